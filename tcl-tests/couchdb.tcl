# couchdb.tcl: helpers of the CouchDB tests (couchdb*.test), sourced after
# tester.tcl.  They talk to the test server with curl, bypassing federate.
#
#   couch_req METHOD PATH ?BODY?   one request; returns the reply's body
#   couch_db NAME                  drop database NAME if it exists, create it
#   couch_load DB DOCS             POST DOCS (a JSON array) to DB/_bulk_docs
#   couchdb_server ACTION          kill|restart|pause|resume the test server
#                                  through $FED_TEST_COUCHDB_CTL

proc couch_req {method path {body ""}} {
  set cmd [list curl -sS -X $method "$::env(FED_TEST_COUCHDB_URL)$path"]
  if {$body ne ""} {
    lappend cmd -H {Content-Type: application/json} --data-binary $body
  }
  exec {*}$cmd
}

proc couch_db {name} {
  couch_req DELETE /$name
  couch_req PUT /$name
}

proc couch_load {db docs} {
  couch_req POST /$db/_bulk_docs "{\"docs\": $docs}"
}

proc couchdb_server {action} {
  if {![info exists ::env(FED_TEST_COUCHDB_CTL)]} {
    error "couchdb_server: FED_TEST_COUCHDB_CTL is not set"
  }
  exec {*}$::env(FED_TEST_COUCHDB_CTL) $action 2>@1
}
