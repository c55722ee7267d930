"""The AWS part of the sandbox: a moto server with gap fills, in one process on 127.0.0.1.

moto covers most of what runbooks read (RDS, CodeDeploy, ELBv2, CloudWatch storage, logs storage);
`app` answers what it lacks or gets wrong (CloudTrail LookupEvents, CloudWatch percentiles, Logs
Insights queries) in the real services' wire shapes, and `seed` plants the scenarios' data.
Run it with `python -m runbook_sandbox.aws --state-dir DIR`.
"""
