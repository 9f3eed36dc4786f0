# all.tcl: run test files, each in its own testfixture process, and sum
# their counts.  tcl-tests/run.sh (make test) calls it with every
# tcl-tests/*.test; by hand, after make:
#     ./testfixture tcl-tests/all.tcl tcl-tests/tester.test ...
#
# Each file's output is shown as it runs, and its "N passed, N failed" line
# is replaced by one naming the file.  A file that crashes, times out or
# ends without that line counts as 1 failed; so does one that exits
# non-zero while reporting no failure (valgrind's --error-exitcode).  The
# last line printed is the total, "N passed, N failed" (", N skipped").
# The exit status is 1 if anything failed.
#
# Environment:
#   FED_TESTFIXTURE           the testfixture to run (default: this one)
#   FED_TESTFIXTURE_WRAPPER   a command prefixed to each run, such as
#                             "valgrind --error-exitcode=1 -q"
#   FED_TEST_TIMEOUT          seconds one file may take (default 1800, 0: none)

proc env_or {name default} {
  if {[info exists ::env($name)] && $::env($name) ne ""} {
    return $::env($name)
  }
  return $default
}

# Run one file.  Returns {nPass nFail nSkip note}, note saying what went
# wrong ("" if nothing).
proc run_file {file} {
  set cmd [regexp -all -inline {\S+} [env_or FED_TESTFIXTURE_WRAPPER ""]]
  lappend cmd [env_or FED_TESTFIXTURE [info nameofexecutable]] $file
  set timeout [env_or FED_TEST_TIMEOUT 1800]
  if {$timeout > 0 && [auto_execok timeout] ne ""} {
    set cmd [list timeout --foreground -k 10 $timeout {*}$cmd]
  }

  set counts ""
  set failures ""
  set chan [open |[list {*}$cmd < /dev/null 2>@1] r]
  while {[gets $chan line] >= 0} {
    if {[regexp {^(\d+) passed, (\d+) failed(?:, (\d+) skipped)?$} $line \
             -> p f s]} {
      set counts [list $p $f [expr {$s eq "" ? 0 : $s}]]
      continue
    }
    regexp {^Failures on these tests: (.*)$} $line -> failures
    puts $line
    flush stdout
  }

  set status 0
  if {[catch {close $chan} msg opts]} {
    set ec [dict get $opts -errorcode]
    switch -- [lindex $ec 0] {
      CHILDSTATUS { set status [lindex $ec 2] }
      CHILDKILLED { set status "killed by [lindex $ec 2]" }
      default     { set status $msg }
    }
  }

  switch -glob -- $status {
    0        { set how "" }
    124      { set how "timed out after $timeout s" }
    killed*  { set how "crashed: $status" }
    default  { set how "exit status $status" }
  }
  if {$counts eq ""} {
    if {$how eq ""} { set how "exit status 0" }
    return [list 0 1 0 "no count line ($how)"]
  }
  lassign $counts p f s
  # A file with failures exits with status 1; anything else is news.
  if {$how ne "" && !($f>0 && $status eq "1")} {
    if {$f==0} { incr f }
    return [list $p $f $s [string trim "$failures ($how)"]]
  }
  return [list $p $f $s $failures]
}

set nPass 0
set nFail 0
set nSkip 0
set aBad {}
foreach file $argv {
  set t0 [clock milliseconds]
  lassign [run_file $file] p f s note
  incr nPass $p
  incr nFail $f
  incr nSkip $s
  set line "[file tail $file]: $p passed, $f failed"
  if {$s} { append line ", $s skipped" }
  if {$note ne ""} {
    append line " - $note"
    lappend aBad "[file tail $file]: $note"
  }
  puts "$line ([format %.1f [expr {([clock milliseconds]-$t0)/1000.0}]] s)"
  flush stdout
}

if {[llength $aBad]} {
  puts "Failures:"
  foreach z $aBad { puts "  $z" }
}
set line "$nPass passed, $nFail failed"
if {$nSkip} { append line ", $nSkip skipped" }
puts $line
exit [expr {$nFail ? 1 : 0}]
