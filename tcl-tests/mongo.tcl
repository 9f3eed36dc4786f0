# mongo.tcl: helpers the MongoDB store's tests share (mongoread.test,
# mongodiff.test, mongooom.test): loading documents while the store cannot
# write yet, and controlling the test server (tcl-tests/servers/mongo.sh).

# mongo_load DB COLL DOCS: drop DB.COLL and insert DOCS, a list of
# documents, each the inside of a Python dict display (BSON types in scope:
# see tcl-tests/servers/mongoload.py).
proc mongo_load {dbname coll docs} {
  set l {}
  foreach d $docs { lappend l "{$d}" }
  set docs $l
  exec /usr/bin/python3 $::mongo_loader $::env(FED_TEST_MONGO_PORT) \
      $dbname $coll << [join $docs "\n"]
  return
}
set ::mongo_loader [file join [file dirname [info script]] servers mongoload.py]

# mongo_server ACTION: kill, restart (mongo.sh's verbs).
proc mongo_server {action} {
  if {![info exists ::env(FED_TEST_MONGO_CTL)]} {
    error "mongo_server: FED_TEST_MONGO_CTL is not set"
  }
  exec {*}$::env(FED_TEST_MONGO_CTL) $action 2>@1
}
