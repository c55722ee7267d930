"""The shared story of the seeded scenarios: names and times every sandbox part agrees on.

AWS metrics, CloudTrail, CodeDeploy, logs, Kubernetes rollouts and PostgreSQL sessions are seeded by
different processes; they line up because they all place events relative to one `anchor` (the
moment the sandbox came up, passed to each part) with the offsets below.
"""

from __future__ import annotations

import datetime as dt

SCENARIOS = ("crashloop", "connections", "latency", "node")

# crashloop: a deploy of payments/api lowered the memory limit; new pods are OOMKilled.
CRASHLOOP_NAMESPACE = "payments"
CRASHLOOP_DEPLOYMENT = "api"
CRASHLOOP_ROLLOUT_AGO = dt.timedelta(minutes=25)
CRASHLOOP_GOOD_LIMIT = "512Mi"
CRASHLOOP_BAD_LIMIT = "256Mi"
CRASHLOOP_APP_PEAK_MIB = 300  # what the app needs: more than the bad limit, less than the good one

# connections: one application leaks idle-in-transaction sessions on the orders database.
DB_INSTANCE_ID = "orders-db"
DB_NAME = "orders"
DB_MAX_CONNECTIONS = 100
LEAKING_APPLICATION = "billing-worker"
LEAK_AGE = dt.timedelta(minutes=20)  # older than the runbook's default idle threshold (10 min)

# latency: a CodeDeploy deployment and a Kubernetes rollout of storefront/checkout start a p99 spike.
LATENCY_NAMESPACE = "storefront"
LATENCY_SERVICE = "checkout"
LATENCY_DEPLOY_AGO = dt.timedelta(minutes=75)
LATENCY_WINDOW = dt.timedelta(hours=3)
LATENCY_LOAD_BALANCER = "app/storefront-alb/50dc6c495c0c9188"
OVERVIEW_DASHBOARD = "storefront-overview"  # the environment's overview dashboard (triage)
LATENCY_LOG_GROUP = "/eks/storefront/checkout"
LATENCY_CODEDEPLOY_APP = "storefront-checkout"
LATENCY_CODEDEPLOY_GROUP = "prod"

# node: the EC2 instance behind one EKS worker fails its system status check (degraded host, a
# retirement scheduled); the node is NotReady with pods stranded on it; its Auto Scaling group can
# replace it.
NODE_CLUSTER = "sandbox-eks"
NODE_ASG = "eks-workers-general"
NODE_COUNT = 3
NODE_IMPAIRED_AGO = dt.timedelta(minutes=18)
NODE_NAMESPACE = "shop"
NODE_DEPLOYMENT = "web"
NODE_REPLICAS = 6
NODE_TARGET_GROUP = "shop-web"
NODE_TARGET_PORT = 30080
DASHBOARD = "sandbox-environment"


def at(anchor: dt.datetime, ago: dt.timedelta) -> dt.datetime:
    """The moment `ago` before the anchor (both timezone-aware UTC)."""
    return anchor - ago
