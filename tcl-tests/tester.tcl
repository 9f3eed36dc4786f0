# tester.tcl: the harness every tcl-tests/*.test sources first, after the
# model of SQLite's test/tester.tcl.  Run one file with
#     ./testfixture tcl-tests/tester.test
# and the whole suite with tcl-tests/run.sh (make test).
#
# On loading, it sets $testdir (this directory), loads the sqlite3 package,
# makes a fresh temporary directory for the file, changes into it and opens
# [db] on a new test.db there.  Commands:
#
#   do_test NAME SCRIPT EXPECTED
#       Evaluate SCRIPT in the caller's frame; its result must equal EXPECTED
#       exactly.  EXPECTED of the form /RE/ must match the regular expression
#       RE instead, ~/RE/ must not match it.
#   do_execsql_test ?-db DB? NAME SQL ?EXPECTED?
#       [DB eval SQL] (default DB: db) must return the flat list EXPECTED.
#   do_catchsql_test ?-db DB? NAME SQL EXPECTED
#       EXPECTED is {1 {error message}} or {0 {results}}.
#   do_oom_test NAME SETUP BODY CHECK ?-modes {transient persistent}?
#                                     ?-leakcheck BOOL? ?-max N?
#       For each mode, and N = 1, 2, ...: run SETUP, arm [fed_faultsim N]
#       (with -persistent in persistent mode), run BODY under catch, disarm,
#       and run CHECK.  BODY must succeed or fail with an error containing
#       "out of memory" (or an empty one: tclsqlite loses the text when
#       formatting it fails too); CHECK (an error fails the test) sees $testrc and
#       $testresult, see oom_result.  The loop ends with the first run in
#       which no fault was injected: that run must succeed.  -leakcheck 1
#       (for a SETUP that rebuilds everything) requires the allocation count
#       after SETUP to be the same in every run.  The test is named
#       NAME.transient / NAME.persistent and reports how many OOM points it
#       covered.
#   oom_result EXPECTED
#       For CHECK: if the body succeeded, its result must be EXPECTED.
#   skip_test NAME REASON
#       Count NAME as skipped, visibly.
#   require_server STORE
#       Return the store's URL/DSN from the environment (pg: FED_TEST_PG_DSN;
#       see fedtest::serverVar), or, when it is absent, count every test left
#       in the file as skipped and finish.
#   finish_test
#       Close db (and any other handle left open), fail "<file>-leak" if
#       SQLite allocations outstanding differ from the start of the file,
#       print "N passed, N failed" (", N skipped") and exit, non-zero on
#       failure.  The temporary directory is removed when nothing failed.
#   reset_db                  close db, delete test.db, open it again
#   execsql SQL ?DB?          [DB eval SQL]
#   catchsql SQL ?DB?         {0 results} or {1 message}
#   forcedelete FILE...       delete files, ignoring missing ones
#   pg_exec SQL               run SQL (one or more statements, each in its
#                             own transaction unless it says BEGIN) on the
#                             test PostgreSQL with psql, as role postgres,
#                             bypassing federate; returns the rows of every
#                             SELECT as one flat list (NULL as "")
#   pg_server ACTION          kill|immediate|restart|status the test
#                             PostgreSQL through $FED_TEST_PG_CTL (servers/postgres.sh)
#   redis_server ACTION, etcd_server ACTION
#                             kill|restart|pause|resume the test Redis / etcd
#   crash_loops               how many times a crash test runs each crash
#                             point: $FED_TEST_CRASH_LOOPS, default 3
#   oom_stride                do_oom_test's step between fault points:
#                             $FED_TEST_OOM_STRIDE, default 1 (every point;
#                             make quicktest sets a larger one)
#
# Set testprefix to prefix every test name that starts with a digit, as
# SQLite does: with "set testprefix pgread", test 1.0 is reported as pgread-1.0.
#
# Environment: FED_TEST_TMPDIR (parent of the per-file temporary directory,
# default /tmp), FED_TEST_MATCH (glob patterns: run only the tests whose
# names match one), FED_TEST_KEEP=1 (keep the temporary directory),
# FED_TEST_OOM_VERBOSE=1 (print every OOM iteration).

if {[info commands fed_malloc_count] eq ""} {
  puts stderr "tester.tcl: run the tests with testfixture, not tclsh"
  exit 1
}

set testdir [file normalize [file dirname [info script]]]
package require sqlite3

namespace eval ::fedtest {
  variable nPass 0
  variable nFail 0
  variable nSkip 0
  variable aFail {}             ;# Names of the failed tests, in order
  variable aHandle {}           ;# dict: database handles opened, as keys
  variable zPath [file normalize $::argv0]
  variable zFile [file tail $::argv0]
  variable startDir [pwd]
  variable tmpDir
  variable nBaseAlloc
  variable nBaseByte

  # The environment variable that carries each store's URL or DSN.
  variable serverVar {
    pg        FED_TEST_PG_DSN
    mysql     FED_TEST_MYSQL_DSN
    redis     FED_TEST_REDIS_URL
    influx    FED_TEST_INFLUX_URL
    etcd      FED_TEST_ETCD_URL
    couchdb   FED_TEST_COUCHDB_URL
    mongo     FED_TEST_MONGO_URI
    neo4j     FED_TEST_NEO4J_URL
    timescale FED_TEST_TIMESCALE_DSN
  }
}

# Print one line (or part of one) and flush, so that the name of a test that
# crashes the process is on the screen.
proc ::fedtest::out {args} {
  puts {*}$args
  flush stdout
}

proc ::fedtest::fullname {name} {
  if {[info exists ::testprefix] && [regexp {^[0-9]} $name]} {
    return "$::testprefix-$name"
  }
  return $name
}

# True if test NAME should run under $FED_TEST_MATCH.
proc ::fedtest::selected {name} {
  if {![info exists ::env(FED_TEST_MATCH)] || $::env(FED_TEST_MATCH) eq ""} {
    return 1
  }
  foreach pattern $::env(FED_TEST_MATCH) {
    if {[string match $pattern $name]} { return 1 }
  }
  return 0
}

proc ::fedtest::begin {name} {
  out -nonewline "$name... "
}

proc ::fedtest::pass {{note ""}} {
  variable nPass
  incr nPass
  out "Ok$note"
}

proc ::fedtest::fail {name msg} {
  variable nFail
  variable aFail
  incr nFail
  lappend aFail $name
  out $msg
}

proc ::fedtest::matches {expected result} {
  if {[regexp {^(~?)/(.*)/$} $expected -> not re]} {
    set m [regexp -- $re $result]
    return [expr {$not eq "" ? $m : !$m}]
  }
  return [expr {$expected eq $result}]
}

# Parse "?-db DB? arg..." for the do_*sql_test commands.
proc ::fedtest::dbopt {cmd usage nMin nMax argList} {
  set db db
  if {[lindex $argList 0] eq "-db"} {
    set db [lindex $argList 1]
    set argList [lrange $argList 2 end]
  }
  if {[llength $argList]<$nMin || [llength $argList]>$nMax} {
    return -code error "wrong # args: should be \"$cmd $usage\""
  }
  return [list $db {*}$argList]
}

# Compare a list result with an expected list, both in canonical form.
proc ::fedtest::checklist {name expected result} {
  if {[catch {list {*}$expected} want]} {
    fail $name "Error: EXPECTED is not a well-formed Tcl list: $expected"
  } elseif {[list {*}$result] eq $want} {
    pass
  } else {
    fail $name "Expected: \[$want\] Got: \[$result\]"
  }
}

proc do_test {name script expected} {
  set name [fedtest::fullname $name]
  if {![fedtest::selected $name]} return
  fedtest::begin $name
  if {[catch {uplevel 1 $script} result]} {
    fedtest::fail $name "Error: $result"
  } elseif {[fedtest::matches $expected $result]} {
    fedtest::pass
  } else {
    fedtest::fail $name "Expected: \[$expected\] Got: \[$result\]"
  }
}

proc do_execsql_test {args} {
  lassign [fedtest::dbopt do_execsql_test "?-db DB? NAME SQL ?EXPECTED?" \
      2 3 $args] db name sql expected
  set name [fedtest::fullname $name]
  if {![fedtest::selected $name]} return
  fedtest::begin $name
  if {[catch {uplevel 1 [list $db eval $sql]} result]} {
    fedtest::fail $name "Error: $result"
  } else {
    fedtest::checklist $name $expected $result
  }
}

proc do_catchsql_test {args} {
  lassign [fedtest::dbopt do_catchsql_test "?-db DB? NAME SQL EXPECTED" \
      3 3 $args] db name sql expected
  set name [fedtest::fullname $name]
  if {![fedtest::selected $name]} return
  fedtest::begin $name
  set rc [catch {uplevel 1 [list $db eval $sql]} result]
  fedtest::checklist $name $expected [list [expr {$rc ? 1 : 0}] $result]
}

proc do_oom_test {name setup body check args} {
  set opt [dict create -modes {transient persistent} -leakcheck 0 -max 100000]
  if {[llength $args] % 2} {
    error "wrong # args: should be \"do_oom_test NAME SETUP BODY CHECK\
        ?-modes MODES? ?-leakcheck BOOL? ?-max N?\""
  }
  foreach {k v} $args {
    if {![dict exists $opt $k]} {
      error "do_oom_test: unknown option \"$k\": must be -modes, -leakcheck\
          or -max"
    }
    dict set opt $k $v
  }
  set name [fedtest::fullname $name]
  if {![fedtest::selected $name]} return
  set verbose [expr {[info exists ::env(FED_TEST_OOM_VERBOSE)]
                     && $::env(FED_TEST_OOM_VERBOSE) ne ""}]
  upvar 1 testrc testrc testresult testresult
  # make quicktest: every Nth OOM point only ($FED_TEST_OOM_STRIDE, 1 by
  # default).  The loop still ends with a run that completes, so the file's
  # later checks see the same state.
  set stride [oom_stride]

  foreach mode [dict get $opt -modes] {
    switch -- $mode {
      transient  { set flag {} }
      persistent { set flag -persistent }
      default    { error "do_oom_test: unknown mode \"$mode\"" }
    }
    set tname $name.$mode
    fedtest::begin $tname
    set err ""
    set nBase ""
    for {set n 1} {$n <= [dict get $opt -max]} {incr n $stride} {
      fed_faultsim_reset
      if {[catch {uplevel 1 $setup} msg]} {
        set err "N=$n: SETUP failed: $msg"
        break
      }
      if {[dict get $opt -leakcheck]} {
        set nNow [lindex [fed_malloc_count] 0]
        if {$n==1} {
          set nBase $nNow
        } elseif {$nNow != $nBase} {
          set err "N=[expr {$n-$stride}]: leaked [expr {$nNow-$nBase}] allocations"
          break
        }
      }
      fed_faultsim $n {*}$flag
      set testrc [expr {[catch {uplevel 1 $body} testresult] ? 1 : 0}]
      set nHit [fed_faultsim_hits]
      fed_faultsim_reset
      if {$verbose} { fedtest::out "\n  N=$n hits=$nHit rc=$testrc $testresult" }
      if {$testrc} {
        if {$nHit==0} {
          set err "N=$n: no fault was injected, yet BODY failed: $testresult"
          break
        }
        # tclsqlite loses the message when formatting it fails too.
        if {$testresult ne ""
         && ![string match -nocase "*out of memory*" $testresult]} {
          set err "N=$n: expected an \"out of memory\" error, got: $testresult"
          break
        }
      }
      if {[catch {uplevel 1 $check} msg]} {
        set err "N=$n (BODY [expr {$testrc ? "failed" : "succeeded"}]):\
            CHECK failed: $msg"
        break
      }
      if {$nHit==0} break
    }
    fed_faultsim_reset
    if {$err eq "" && $n > [dict get $opt -max]} {
      set err "still failing after [dict get $opt -max] OOM points"
    }
    if {$err eq "" && $stride > 1} {
      fedtest::pass " ([expr {($n-1)/$stride}] OOM points, every ${stride}th)"
    } elseif {$err eq ""} {
      fedtest::pass " ([expr {$n-1}] OOM points)"
    } else {
      fedtest::fail $tname $err
    }
  }
}

proc oom_result {expected} {
  upvar 1 testrc testrc testresult testresult
  if {$testrc==0 && [list {*}$testresult] ne [list {*}$expected]} {
    error "Expected: \[$expected\] Got: \[$testresult\]"
  }
}

proc skip_test {name reason} {
  set name [fedtest::fullname $name]
  if {![fedtest::selected $name]} return
  incr fedtest::nSkip
  fedtest::out "$name... skipped ($reason)"
}

# How many tests the test file has after the line of FRAME (an [info frame]
# dict: the file-level command that led to require_server), counting the
# lines that start with do_*test or skip_test; after its first
# require_server line when FRAME does not say.  At least 1, so that a
# skipped file always shows.
proc ::fedtest::remainingTests {frame} {
  variable zPath
  set line 0
  if {[dict exists $frame file] && [dict exists $frame line]
   && [file normalize [dict get $frame file]] eq $zPath} {
    set line [dict get $frame line]
  }
  set fd [open $zPath]
  set aLine [split [read $fd] \n]
  close $fd
  if {$line==0} {
    set line [lsearch -regexp $aLine {^\s*require_server\s}]
    incr line
  }
  set n 0
  foreach z [lrange $aLine $line end] {
    if {[regexp {^\s*(do_\w*test|skip_test)\s} $z]} { incr n }
  }
  return [expr {$n>0 ? $n : 1}]
}

proc require_server {store} {
  if {![dict exists $fedtest::serverVar $store]} {
    error "require_server: unknown store \"$store\": must be one of\
        [join [dict keys $fedtest::serverVar] {, }]"
  }
  set var [dict get $fedtest::serverVar $store]
  if {[info exists ::env($var)] && $::env($var) ne ""} {
    return $::env($var)
  }
  set n [fedtest::remainingTests [info frame 1]]
  incr fedtest::nSkip $n
  fedtest::out "$fedtest::zFile: $var is not set:\
      skipping the $store tests ($n)"
  finish_test
}

proc finish_test {} {
  catch {db close}
  foreach h [dict keys $fedtest::aHandle] {
    if {[llength [info commands ::$h]]} {
      fedtest::out "finish_test: closing database handle \"$h\" left open"
      catch {::$h close}
    }
  }
  fed_faultsim_reset
  lassign [fed_malloc_count] nAlloc nByte
  if {$nAlloc != $fedtest::nBaseAlloc} {
    set name "[file rootname $fedtest::zFile]-leak"
    fedtest::begin $name
    fedtest::fail $name "Expected: \[0 allocations outstanding\]\
        Got: \[[expr {$nAlloc-$fedtest::nBaseAlloc}] allocations,\
        [expr {$nByte-$fedtest::nBaseByte}] bytes outstanding\]"
  }
  cd $fedtest::startDir
  set nFail $fedtest::nFail
  if {$nFail==0 && !([info exists ::env(FED_TEST_KEEP)]
                     && $::env(FED_TEST_KEEP) ne "")} {
    file delete -force $fedtest::tmpDir
  } else {
    fedtest::out "Test files kept in $fedtest::tmpDir"
  }
  if {$nFail} {
    fedtest::out "Failures on these tests: $fedtest::aFail"
  }
  set line "$fedtest::nPass passed, $nFail failed"
  if {$fedtest::nSkip} { append line ", $fedtest::nSkip skipped" }
  fedtest::out $line
  exit [expr {$nFail ? 1 : 0}]
}

proc forcedelete {args} {
  foreach f $args { file delete -force -- $f }
}

proc reset_db {} {
  catch {db close}
  forcedelete test.db test.db-journal test.db-wal test.db-shm
  uplevel #0 {sqlite3 db test.db}
}

proc execsql {sql {db db}} {
  uplevel 1 [list $db eval $sql]
}

proc catchsql {sql {db db}} {
  set rc [catch {uplevel 1 [list $db eval $sql]} result]
  list [expr {$rc ? 1 : 0}] $result
}

proc pg_exec {sql} {
  if {![info exists ::env(FED_TEST_PG_DSN)]} {
    error "pg_exec: FED_TEST_PG_DSN is not set"
  }
  set fs \x1f
  set rs \x1e
  set out [exec env PGOPTIONS=-c\ client_min_messages=warning \
      psql -X -q -A -t -v ON_ERROR_STOP=1 -F $fs -R $rs \
      -d $::env(FED_TEST_PG_DSN) << $sql 2>@1]
  set result {}
  foreach row [split $out $rs] {
    lappend result {*}[split $row $fs]
  }
  return $result
}

proc pg_server {action} {
  if {![info exists ::env(FED_TEST_PG_CTL)]} {
    error "pg_server: FED_TEST_PG_CTL is not set"
  }
  exec {*}$::env(FED_TEST_PG_CTL) $action 2>@1
}

# crash_loops: the number of runs of each crash point in the crash tests
# (txnpg2pc, txnstores): FED_TEST_CRASH_LOOPS, default 3 so that the suite stays
# fast; set it to 100 or more for a soak run.
proc oom_stride {} {
  if {![info exists ::env(FED_TEST_OOM_STRIDE)]} { return 1 }
  set n $::env(FED_TEST_OOM_STRIDE)
  if {![string is integer -strict $n] || $n < 1} {
    error "FED_TEST_OOM_STRIDE must be a positive integer, not \"$n\""
  }
  return $n
}

proc crash_loops {} {
  if {[info exists ::env(FED_TEST_CRASH_LOOPS)]} {
    set n $::env(FED_TEST_CRASH_LOOPS)
    if {![string is integer -strict $n] || $n<1} {
      error "FED_TEST_CRASH_LOOPS must be a positive integer, not \"$n\""
    }
    return $n
  }
  return 3
}

# redis_server ACTION, etcd_server ACTION: kill|restart the test Redis or
# etcd through $FED_TEST_REDIS_CTL / $FED_TEST_ETCD_CTL (tcl-tests/servers/redis.sh, etcd.sh).
proc redis_server {action} {
  if {![info exists ::env(FED_TEST_REDIS_CTL)]} {
    error "redis_server: FED_TEST_REDIS_CTL is not set"
  }
  exec {*}$::env(FED_TEST_REDIS_CTL) $action 2>@1
}
proc etcd_server {action} {
  if {![info exists ::env(FED_TEST_ETCD_CTL)]} {
    error "etcd_server: FED_TEST_ETCD_CTL is not set"
  }
  exec {*}$::env(FED_TEST_ETCD_CTL) $action 2>@1
}

# Track every database handle opened, so that finish_test can close the ones
# a test forgets before it checks for leaks.
rename ::sqlite3 ::fedtest::sqlite3
proc ::sqlite3 {args} {
  set r [uplevel 1 [list ::fedtest::sqlite3 {*}$args]]
  if {[llength $args]>=2 && ![string match -* [lindex $args 0]]} {
    dict set ::fedtest::aHandle [lindex $args 0] 1
  }
  return $r
}

# A fresh directory for this file's databases, and db on a new test.db.
apply {{} {
  set root /tmp
  if {[info exists ::env(FED_TEST_TMPDIR)] && $::env(FED_TEST_TMPDIR) ne ""} {
    set root $::env(FED_TEST_TMPDIR)
  }
  set fedtest::tmpDir [file join $root \
      "[file rootname $fedtest::zFile].[pid]"]
  file delete -force $fedtest::tmpDir
  file mkdir $fedtest::tmpDir
  cd $fedtest::tmpDir
  fed_faultsim_reset
  lassign [fed_malloc_count] fedtest::nBaseAlloc fedtest::nBaseByte
}}
sqlite3 db test.db
