"""The cluster code location: rec-assets' definitions, every step of a run in its own Kubernetes job.

Loaded by the user-deployment of ``values.yaml`` (``dagster api grpc --python-file
/app/deploy/k8s/definitions.py``). Everything else (assets, checks, jobs, schedules, resources) is
``rec_assets.definitions`` unchanged: the configuration that makes it a cluster
deployment is in the environment (``REC_TABLE_STORE=s3://...``, ``REC_HOME`` on a shared volume), and the
run launcher and pools are in the instance (``dagster.yaml``). dagster-k8s is needed only in the image
(``pip install '.[k8s]'``), never by the local project.
"""

from dagster import Definitions, definitions
from dagster_k8s import k8s_job_executor

from rec_assets.definitions import defs as project_defs

# Step pods inherit image, namespace, env config maps / secrets and volumes from the K8sRunLauncher's
# config in dagster.yaml; max_concurrent bounds the steps one run starts at once (pools bound the writers).
CLUSTER_EXECUTOR = k8s_job_executor.configured({"max_concurrent": 8}, name="k8s")



@definitions
def defs() -> Definitions:
    return Definitions.merge(project_defs(), Definitions(executor=CLUSTER_EXECUTOR))
