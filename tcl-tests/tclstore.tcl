# tclstore.tcl: a model remote store for the scripted store (tclstore,
# testfixture/test_store.c), so that the coordinator, recovery and sagas
# run without servers.  Sourced by the tests that need it (txncrash.test) and
# by the child processes they run.
#
#   ts_create NAME            define the command NAME, the handler of a
#                             server: SELECT fed_server('a', 'tclstore_2pc',
#                             'NAME').  Its durable state is the file
#                             NAME.store in the current directory.
#   ts_reset NAME             empty its durable state
#   ts_rows NAME TABLE        -> the committed rows of TABLE, by key, each
#                             a list of its values
#   ts_prepared NAME          -> the prepared global ids, sorted
#   ts_markers NAME           -> the commit markers' global ids, sorted
#   ts_set NAME TABLE KEY ROW another client writes a committed row (ROW
#                             NULL: deletes it), e.g. to make a conflict
#   ts_fail NAME METHOD ?when?
#                             the next call of METHOD fails: "before" (the
#                             default) without doing anything, "after" once
#                             it is done (the reply is lost)
#   ts_down NAME BOOL         the server is unreachable: connect fails and
#                             alive answers 0
#   ts_hook NAME METHOD SCRIPT
#                             run SCRIPT (at global level) just before the
#                             next call of METHOD: another client acting
#                             in the middle of a commit
#
# Every table has the columns "k int primary key, v text".  The model of
# durability: what a server keeps across the client's death is in the
# file (committed rows, prepared transactions with their writes and
# times, markers), written at once by every call that changes it, and
# read by every call, so that a child process and the recovering process
# see the same server.  What a server loses when its client dies (the
# open transaction: its queued writes and savepoints) is in this
# process's memory only.  Writes are queued from begin and applied at
# commit (or kept at prepare), atomically; reads in the transaction see
# the queue.  undoimages guards the keys it read: a commit fails if one
# changed since.

namespace eval ::ts {
  variable txn      ;# NAME -> queued writes {put TABLE KEY ROW|del TABLE KEY}
  variable sp       ;# NAME -> dict savepoint level -> queue length
  variable guard    ;# NAME -> dict imagekey -> before-image
  variable fail     ;# NAME -> dict method -> before|after
  variable down     ;# NAME -> 1 when unreachable
  variable hook     ;# NAME -> dict method -> script
  array set txn {}
  array set sp {}
  array set guard {}
  array set fail {}
  array set down {}
  array set hook {}
}

proc ::ts::path {name} { return [file join [pwd] $name.store] }

# The durable state: a dict with keys rows (TABLE -> KEY -> ROW), prepared
# (GID -> {TIME WRITES}) and markers (GID -> TIME).
proc ::ts::load {name} {
  set f [::ts::path $name]
  if {![file exists $f]} {
    return [dict create rows {} prepared {} markers {}]
  }
  set fd [open $f]
  set s [read $fd]
  close $fd
  return $s
}
proc ::ts::save {name state} {
  set f [::ts::path $name]
  set fd [open $f.tmp w]
  puts -nonewline $fd $state
  close $fd
  file rename -force $f.tmp $f
}

# Apply queued writes to a rows dict.
proc ::ts::apply {rows writes} {
  foreach w $writes {
    lassign $w op table key row
    if {$op eq "put"} {
      dict set rows $table $key $row
    } elseif {[dict exists $rows $table $key]} {
      dict unset rows $table $key
    }
  }
  return $rows
}

proc ::ts::value {rows table key} {
  if {[dict exists $rows $table $key]} { return [dict get $rows $table $key] }
  return NULL
}

proc ts_create {name} {
  set ::ts::txn($name) {}
  set ::ts::sp($name) {}
  set ::ts::guard($name) {}
  set ::ts::fail($name) {}
  set ::ts::down($name) 0
  set ::ts::hook($name) {}
  proc ::$name {method args} "::ts::handle $name \$method {*}\$args"
  return $name
}
proc ts_reset {name} {
  ::ts::save $name [dict create rows {} prepared {} markers {}]
  set ::ts::txn($name) {}
  set ::ts::sp($name) {}
  set ::ts::guard($name) {}
  set ::ts::fail($name) {}
  set ::ts::down($name) 0
  set ::ts::hook($name) {}
}
proc ts_rows {name table} {
  set rows [dict get [::ts::load $name] rows]
  if {![dict exists $rows $table]} { return {} }
  set out {}
  foreach k [lsort -dictionary [dict keys [dict get $rows $table]]] {
    lappend out [dict get $rows $table $k]
  }
  return $out
}
proc ts_prepared {name} {
  lsort [dict keys [dict get [::ts::load $name] prepared]]
}
proc ts_markers {name} {
  lsort [dict keys [dict get [::ts::load $name] markers]]
}
proc ts_set {name table key row} {
  set s [::ts::load $name]
  set rows [dict get $s rows]
  if {$row eq "NULL"} {
    set rows [::ts::apply $rows [list [list del $table $key]]]
  } else {
    dict set rows $table $key $row
  }
  dict set s rows $rows
  ::ts::save $name $s
}
proc ts_fail {name method {when before}} {
  dict set ::ts::fail($name) $method $when
}
proc ts_down {name b} { set ::ts::down($name) $b }
proc ts_hook {name method script} {
  dict set ::ts::hook($name) $method $script
}

proc ::ts::handle {name method args} {
  if {[dict exists $::ts::hook($name) $method]} {
    set script [dict get $::ts::hook($name) $method]
    dict unset ::ts::hook($name) $method
    uplevel #0 $script
  }
  set when ""
  if {[dict exists $::ts::fail($name) $method]} {
    set when [dict get $::ts::fail($name) $method]
    dict unset ::ts::fail($name) $method
    if {$when eq "before"} { error "$name: $method failed" }
  }
  set r [::ts::call $name $method $args]
  if {$when eq "after"} { error "$name: the reply to $method was lost" }
  return $r
}

proc ::ts::call {name method argl} {
  switch -- $method {
    connect {
      if {$::ts::down($name)} { error "$name: server is down" }
      return 1
    }
    alive     { return [expr {!$::ts::down($name)}] }
    describe  { return "k int primary key, v text" }
    pushable  { return no }
    orderable { return 0 }
    filter {
      set table [lindex $argl 0]
      set rows [::ts::apply [dict get [::ts::load $name] rows] \
                    $::ts::txn($name)]
      set out {}
      if {[dict exists $rows $table]} {
        foreach k [lsort -dictionary [dict keys [dict get $rows $table]]] {
          lappend out [dict get $rows $table $k]
        }
      }
      return $out
    }
    insert {
      lassign $argl table vals
      set key [lindex $vals 0]
      set rows [::ts::apply [dict get [::ts::load $name] rows] \
                    $::ts::txn($name)]
      if {[dict exists $rows $table $key]} {
        error "$name: duplicate key $key in $table"
      }
      lappend ::ts::txn($name) [list put $table $key $vals]
      return {}
    }
    update {
      lassign $argl table key vals
      set new [lindex $vals 0]
      if {$new ne $key} {
        set rows [::ts::apply [dict get [::ts::load $name] rows] \
                      $::ts::txn($name)]
        if {[dict exists $rows $table $new]} {
          error "$name: duplicate key $new in $table"
        }
        lappend ::ts::txn($name) [list del $table $key]
      }
      lappend ::ts::txn($name) [list put $table $new $vals]
      return {}
    }
    delete {
      lassign $argl table key
      lappend ::ts::txn($name) [list del $table $key]
      return {}
    }
    begin {
      set ::ts::txn($name) {}
      set ::ts::sp($name) {}
      set ::ts::guard($name) {}
      return {}
    }
    savepoint {
      lassign $argl release from to
      for {set i $from} {$i<$to} {incr i} {
        dict set ::ts::sp($name) $i [llength $::ts::txn($name)]
      }
      return {}
    }
    release { return {} }
    rollbackto {
      set n [dict get $::ts::sp($name) [lindex $argl 0]]
      set ::ts::txn($name) [lrange $::ts::txn($name) 0 [expr {$n-1}]]
      return {}
    }
    commit {
      set s [::ts::load $name]
      set rows [dict get $s rows]
      set writes $::ts::txn($name)
      set guard $::ts::guard($name)
      set ::ts::txn($name) {}
      set ::ts::guard($name) {}
      dict for {ikey before} $guard {
        regexp {^([^/]*)/(.*)$} $ikey -> table key
        if {[::ts::value $rows $table $key] ne $before} {
          error "$name: commit refused: key $ikey changed since it was\
              read; nothing was written"
        }
      }
      dict set s rows [::ts::apply $rows $writes]
      if {[llength $argl]} {
        dict set s markers [lindex $argl 0] [clock seconds]
      }
      ::ts::save $name $s
      return {}
    }
    rollback {
      set ::ts::txn($name) {}
      set ::ts::guard($name) {}
      return {}
    }
    prepare {
      set gid [lindex $argl 0]
      set s [::ts::load $name]
      if {![dict exists $s prepared $gid]} {
        dict set s prepared $gid [list [clock seconds] $::ts::txn($name)]
        ::ts::save $name $s
      }
      set ::ts::txn($name) {}
      return {}
    }
    resolve {
      lassign $argl gid bCommit
      set s [::ts::load $name]
      if {[dict exists $s prepared $gid]} {
        if {$bCommit} {
          set writes [lindex [dict get $s prepared $gid] 1]
          dict set s rows [::ts::apply [dict get $s rows] $writes]
        }
        dict unset s prepared $gid
        ::ts::save $name $s
      }
      return {}
    }
    listprepared {
      lassign $argl prefix minage
      set now [clock seconds]
      set out {}
      dict for {gid v} [dict get [::ts::load $name] prepared] {
        if {[string first $prefix $gid]==0
         && $now - [lindex $v 0] >= $minage} {
          lappend out $gid
        }
      }
      return [lsort $out]
    }
    markercheck {
      return [dict exists [::ts::load $name] markers [lindex $argl 0]]
    }
    markerremove {
      set s [::ts::load $name]
      if {[dict exists $s markers [lindex $argl 0]]} {
        dict unset s markers [lindex $argl 0]
        ::ts::save $name $s
      }
      return {}
    }
    markerlist {
      set out {}
      foreach gid [dict keys [dict get [::ts::load $name] markers]] {
        if {[string first [lindex $argl 0] $gid]==0} { lappend out $gid }
      }
      return [lsort $out]
    }
    undoimages {
      set rows [dict get [::ts::load $name] rows]
      set after [::ts::apply $rows $::ts::txn($name)]
      set out {}
      set seen {}
      set ::ts::guard($name) {}
      foreach w $::ts::txn($name) {
        lassign $w op table key
        if {[dict exists $seen $table/$key]} continue
        dict set seen $table/$key 1
        set b [::ts::value $rows $table $key]
        dict set ::ts::guard($name) $table/$key $b
        lappend out [list $table/$key $b [::ts::value $after $table $key]]
      }
      return $out
    }
    undoapply {
      lassign $argl ikey before after
      regexp {^([^/]*)/(.*)$} $ikey -> table key
      set s [::ts::load $name]
      set cur [::ts::value [dict get $s rows] $table $key]
      if {$cur eq $before} { return ok }
      if {$cur ne $after} { return conflict }
      if {$before eq "NULL"} {
        dict set s rows [::ts::apply [dict get $s rows] \
                             [list [list del $table $key]]]
      } else {
        dict set s rows $table $key $before
      }
      ::ts::save $name $s
      return ok
    }
  }
  error "$name: unexpected call $method"
}
