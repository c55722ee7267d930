"""Runs as Kubernetes Jobs, records on S3 (`runbook run --on kubernetes`, `runbook serve` with
`executor: kubernetes`): `executor` (the interface, the local executor), `manifest` (the Job, pure),
`submit` (submit or attach, follow, read the record), `outcome` (why a Job failed, its record finalized).
"""
