"""The Kubernetes part of the incident sandbox: an HTTP server speaking enough of the Kubernetes REST
API for the official python client and kubectl 1.32, with a controller that makes deployments,
crash loops, evictions and rollbacks behave like a cluster.

Launch: `python -m runbook_sandbox.k8s --state-dir DIR [--port 0] [--scenario crashloop|latency|all|none]
[--anchor ISO8601] [--pods N] [--tick SECONDS]`. Map of the package:

    __main__    process interface: args, kubeconfig, ready line, signals
    server      HTTP transport and the request log
    api         routing and verbs (get/list/watch/create/update/patch/delete), dryRun, tables
    store       plain-dict object store with one resourceVersion counter
    controller  the loop: replicasets, scheduler, kubelet, garbage collection, PDB status
    deployments revisions, rolling update and deployment status;  pods: bind, delete, defaults
    kubelet     pod and container status from the app model;  apps: the app model;  logs: container logs
    subresources  pods/log, pods/eviction, */scale;  metrics: metrics.k8s.io
    access      SelfSubjectAccessReview (`kubectl auth can-i`) from <state-dir>/access.json; whoami
    watch: ?watch=true streams;  manifests + seeds: the seeded cluster
    patch, selectors, validate, tables, discovery, resources, status, events, workloads
"""
