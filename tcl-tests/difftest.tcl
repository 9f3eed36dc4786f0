# difftest.tcl: the random differential tester that redisdiff.test and
# etcddiff.test share.  A test file puts rows in a store, makes a local
# SQLite table of the same declared column types holding the same rows
# (as SQLite itself would store the same literals), registers both with
# [diff::table], and calls [diff::run].  Every generated query then runs
# on the local table, on the federated table and on a cached twin of it
# (twice: the second run may be a cache hit), and the answers must be the
# same: as multisets of rows, or as sequences when ORDER BY makes the
# order total.  Values are compared through quote(), so 3, 3.0 and '3'
# differ.
#
# Environment:
#   FED_TEST_SEED     the seed (default: from the clock); printed first, so
#                     that a failing run can be replayed
#   FED_TEST_DIFF_N   queries per table (default set by the test file; a
#                     tenth of it when FED_TEST_QUICK is set: make quicktest)
#
# ::diff_same_table_terms (default 1): also generate conditions whose right
# side is a column of the same table (value = key).  SQLite 3.40 does not
# offer such a term to xBestIndex but still offers LIMIT (ext/plan.c,
# "hidden terms").

if {![info exists ::diff_same_table_terms]} { set ::diff_same_table_terms 1 }

namespace eval diff {
  variable tables {}            ;# list of table names registered
  variable spec                 ;# array: NAME,key -> value
  variable seed
  variable nQuery 0
  variable nCompared 0
}

# Seed the generator (Tcl's rand() is deterministic for a given srand).
proc diff::seed {} {
  variable seed
  if {[info exists ::env(FED_TEST_SEED)] && $::env(FED_TEST_SEED) ne ""} {
    set seed $::env(FED_TEST_SEED)
  } else {
    set seed [expr {[clock microseconds] % 1000000007}]
  }
  expr {srand($seed)}
  fedtest::out "[file tail $::argv0]: seed $seed (FED_TEST_SEED=$seed\
      replays this run)"
  return $seed
}
proc diff::rand {n} { expr {int(rand()*$n)} }
proc diff::pick {l} { lindex $l [expr {int(rand()*[llength $l])}] }
proc diff::chance {p} { expr {rand() < $p} }

# SQL literals.  A value is {t STRING} (text) or {b BYTES} (a blob).
proc diff::hex {bytes} { binary scan $bytes H* h; return $h }
proc diff::lit {v} {
  lassign $v kind s
  if {$kind eq "b"} { return "x'[hex $s]'" }
  return "'[string map {' ''} $s]'"
}
# The bytes of a value as the store holds them.
proc diff::bytes {v} {
  lassign $v kind s
  if {$kind eq "b"} { return $s }
  return [encoding convertto utf-8 $s]
}
proc diff::blitval {bytes} { return "x'[hex $bytes]'" }

# diff::table NAME LOCAL CACHED COLS UNIQUE CONSTS ?PATTERNS?
#   NAME     the federated table, CACHED its twin with cache_ttl, LOCAL the
#            local copy
#   COLS     the columns compared, {name ...}
#   UNIQUE   columns that identify a row (ORDER BY them is total)
#   CONSTS   dict column -> list of SQL literals to compare it with
#   PATTERNS dict column -> list of text values to make LIKE/GLOB from
proc diff::table {name local cached cols unique consts {patterns {}}} {
  variable tables
  variable spec
  lappend tables $name
  set spec($name,local) $local
  set spec($name,cached) $cached
  set spec($name,cols) $cols
  set spec($name,unique) $unique
  set spec($name,consts) $consts
  set spec($name,patterns) $patterns
}

# Constants of every type that any column is compared with, besides the
# table's own values.
set diff::generic {
  NULL 0 1 -1 2 10 1.0 2.5 -0.5 1e3 1e100 9223372036854775807
  -9223372036854775808 '' '1' '10' '2.5' '3.0' {' 1'} 'a' 'A' 'abc' 'z'
  '%' '_' '*' x'' x'00' x'ff' x'61' 'é'
}

# A LIKE or GLOB pattern made from text S.
proc diff::pattern {s glob} {
  set n [string length $s]
  set p $s
  switch [rand 9] {
    0 { set p "[string range $s 0 [rand [expr {$n+1}]]][expr {$glob ? "*" : "%"}]" }
    1 {
      if {$n > 0} {
        set i [rand $n]
        set p "[string range $s 0 [expr {$i-1}]][expr {$glob ? "?" : "_"}][string range $s [expr {$i+1}] end]"
      }
    }
    2 { set p "[expr {$glob ? "*" : "%"}][string range $s [rand [expr {$n+1}]] end]" }
    3 { set p [string toupper $s] }
    4 { set p [string tolower $s] }
    5 { if {$glob} { set p "\[a-c\]*" } else { set p "a%" } }
    6 { if {$glob} { set p "\[^a\]*" } else { set p "%_%" } }
    7 { set p "[string range $s 0 0][expr {$glob ? "*" : "%"}][string range $s end end]" }
    8 { set p $s }
  }
  if {[chance 0.2]} { append p [expr {$glob ? "*" : "%"}] }
  return "'[string map {' ''} $p]'"
}

# A constant for column C of table T.
proc diff::const {t c} {
  variable spec
  set own {}
  if {[dict exists $spec($t,consts) $c]} { set own [dict get $spec($t,consts) $c] }
  if {[llength $own] && [chance 0.7]} { return [pick $own] }
  return [pick $::diff::generic]
}

# One condition on table T (column names qualified with Q, "" or "x.").
proc diff::cond {t q} {
  variable spec
  set cols $spec($t,cols)
  # The columns a store pushes down (the row's identity) half the time.
  if {[chance 0.5]} {
    set c [pick $spec($t,unique)]
  } else {
    set c [pick $cols]
  }
  set col "$q$c"
  set r [rand 22]
  if {$::diff_same_table_terms && [chance 0.08]} {
    return "$col [pick {= < > != IS}] $q[pick $cols]"
  }
  switch $r {
    0 - 1 - 2 { return "$col = [const $t $c]" }
    3 { return "$col [pick {< <= > >=}] [const $t $c]" }
    4 { return "$col BETWEEN [const $t $c] AND [const $t $c]" }
    5 - 6 {
      set l {}
      for {set i [expr {1+[rand 4]}]} {$i > 0} {incr i -1} {
        lappend l [const $t $c]
      }
      return "$col [expr {[chance 0.15] ? "NOT IN" : "IN"}] ([join $l ", "])"
    }
    7 - 8 - 9 {
      set src {abc}
      if {[dict exists $spec($t,patterns) $c]} {
        set src [pick [dict get $spec($t,patterns) $c]]
      }
      set glob [chance 0.5]
      return "$col [expr {$glob ? "GLOB" : "LIKE"}] [pattern $src $glob]"
    }
    10 { return "$col IS [expr {[chance 0.5] ? "NOT " : ""}]NULL" }
    11 { return "$col != [const $t $c]" }
    12 { return "$col IS [const $t $c]" }
    13 { return "$col [pick {< <= > >=}] [const $t $c] AND $col [pick {< <= > >=}] [const $t $c]" }
    14 { return "($col = [const $t $c] OR $col = [const $t $c])" }
    15 {
      # Under another collation SQLite must compare (pushed or not).
      set coll "COLLATE [pick {NOCASE RTRIM BINARY}]"
      if {[chance 0.3]} {
        return "$col $coll IN ([const $t $c], [const $t $c])"
      }
      return "$col [pick {= < >=}] [const $t $c] $coll"
    }
    19 { return "+$col = [const $t $c]" }
    20 {
      set src abc
      if {[dict exists $spec($t,patterns) $c]} {
        set src [pick [dict get $spec($t,patterns) $c]]
      }
      return "$col LIKE [pattern $src 0] ESCAPE '\\'"
    }
    21 { return "$col [pick {LIKE GLOB}] [pick {x'61' x'' x'2a' x'25' NULL 1 '1%' '1*'}]" }
    16 { return "typeof($col) = [pick {'integer' 'real' 'text' 'blob' 'null'}]" }
    17 { return "$col IN (SELECT x FROM diffk)" }
    default {
      # A key condition (the first unique column): what stores push.
      set k "$q[lindex $spec($t,unique) 0]"
      return "$k [pick {= >= < IN}] [expr {[chance 0.5] ? [const $t [lindex $spec($t,unique) 0]] : "(SELECT x FROM diffk LIMIT 1)"}]"
    }
  }
}

proc diff::where {t q} {
  set n [rand 4]
  if {$n == 0} { return "" }
  set l {}
  for {set i 0} {$i < $n} {incr i} { lappend l [cond $t $q] }
  set w [join $l [expr {[chance 0.15] ? " OR " : " AND "}]]
  if {[chance 0.05]} { set w "NOT ($w)" }
  return " WHERE $w"
}

proc diff::proj {t q} {
  variable spec
  set l {}
  foreach c $spec($t,cols) {
    if {[chance 0.6]} { lappend l "quote($q$c)" }
  }
  if {![llength $l]} { lappend l "quote($q[pick $spec($t,cols)])" }
  return [join $l ", "]
}

# A query over %T (the table), and whether its order is total.
proc diff::query {t} {
  variable spec
  set u $spec($t,unique)
  switch [rand 10] {
    0 - 1 - 2 {
      return [list "SELECT [proj $t {}] FROM %T[where $t {}]" 0]
    }
    3 - 4 {
      # ORDER BY a column, then the row's identity: a total order.
      set ob {}
      if {[chance 0.5]} {
        lappend ob "[pick $spec($t,cols)] [pick {ASC DESC}]"
      }
      foreach c $u { lappend ob "$c [pick {ASC DESC {}}]" }
      set w [where $t {}]
      set sql "SELECT [proj $t {}] FROM %T$w ORDER BY [join $ob ", "]"
      # SQLite 3.40 drops an ORDER BY column that the WHERE holds equal to
      # a value, also when that value has an affinity of its own (a CAST)
      # and so equals several distinct values of an untyped column ("_id
      # = CAST('10' AS NUMERIC)" holds for 10 and '10'): the order is then
      # SQLite's scan order, on the local table and the store alike, and
      # only the set of rows is defined.
      if {[string match "*CAST(*" $w]} { return [list $sql 0] }
      if {[chance 0.7]} {
        append sql " LIMIT [rand 6]"
        if {[chance 0.5]} { append sql " OFFSET [rand 4]" }
      }
      return [list $sql 1]
    }
    5 {
      # LIMIT without a total order: only the count is defined.
      return [list "SELECT count(*) FROM (SELECT * FROM %T[where $t {}] LIMIT [rand 6] OFFSET [rand 3])" 1]
    }
    6 {
      set c [pick $spec($t,cols)]
      return [list "SELECT typeof($c), quote(min($c)), quote(max($c)), count(*), count($c) FROM %T[where $t {}] GROUP BY 1" 0]
    }
    7 {
      set c [pick $spec($t,cols)]
      return [list "SELECT quote($c), count(*) FROM %T[where $t {}] GROUP BY $c" 0]
    }
    8 {
      # A join with the local table diffk(x): values known only at run
      # time, of every type.
      set c [pick [concat $u $u $spec($t,cols)]]
      set op [pick {= = = IS < >=}]
      return [list "SELECT quote(diffk.x), [proj $t t.] FROM diffk JOIN %T AS t ON t.$c $op diffk.x[string map {" WHERE " " AND "} [where $t t.]]" 0]
    }
    9 {
      if {[chance 0.5]} {
        return [list "SELECT count(*), quote(sum(length([pick $spec($t,cols)]))) FROM %T[where $t {}]" 0]
      }
      # A self-join: the right side's values are known only at run time.
      set c [pick $u]
      return [list "SELECT [proj $t a.], quote(b.$c) FROM %T AS a JOIN %T AS b ON b.$c [pick {= = IS >}] a.[pick $spec($t,cols)][string map {" WHERE " " AND "} [where $t a.]]" 0]
    }
  }
}

proc diff::short {s} {
  if {[string length $s] > 800} { return "[string range $s 0 800]..." }
  return $s
}

proc diff::rows {sql} {
  set out {}
  db eval $sql r {
    set l {}
    foreach c $r(*) { lappend l $r($c) }
    lappend out $l
  }
  return $out
}

# Run SQL with %T as TAB; {0 rows} or {1 error}.
proc diff::answer {sql tab ordered} {
  set sql [string map [list %T $tab] $sql]
  if {[catch {rows $sql} res]} { return [list 1 $res] }
  if {!$ordered} { set res [lsort $res] }
  return [list 0 $res]
}

# Run N queries on table T; returns "" or the first mismatches found
# (at most 3), each with the query and the answers.
proc diff::batch {t n} {
  variable spec
  variable nQuery
  variable nCompared
  set bad {}
  for {set i 0} {$i < $n && [llength $bad] < 3} {incr i} {
    lassign [query $t] sql ordered
    incr nQuery
    set want [answer $sql $spec($t,local) $ordered]
    foreach {tab label} [list $t store $spec($t,cached) cache-fill \
                             $spec($t,cached) cache-hit] {
      if {$tab eq ""} continue
      set got [answer $sql $tab $ordered]
      incr nCompared
      if {$got ne $want} {
        lappend bad [list $label [string map [list %T $tab] $sql] \
            want [short $want] got [short $got]]
        break
      }
    }
  }
  return $bad
}

# diff::run PREFIX N ?BATCH?: N queries per registered table, one check
# per BATCH queries.
proc diff::run {prefix n {batch 250}} {
  variable tables
  foreach t $tables {
    for {set i 0} {$i < $n} {incr i $batch} {
      set m [expr {min($batch, $n-$i)}]
      do_test $prefix.$t.[expr {$i/$batch}] [list diff::batch $t $m] {}
    }
  }
}

# The number of queries from the environment, or DEFAULT.
proc diff::count {default} {
  if {[info exists ::env(FED_TEST_DIFF_N)] && $::env(FED_TEST_DIFF_N) ne ""} {
    return $::env(FED_TEST_DIFF_N)
  }
  if {[info exists ::env(FED_TEST_QUICK)] && $::env(FED_TEST_QUICK) ne ""} {
    return [expr {max(1, $default/10)}]
  }
  return $default
}
