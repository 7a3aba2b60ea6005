#!/usr/bin/env bash
# Launch a Flex Template job (examples; every value can be overridden from the environment).
#
#   PROJECT=p REGION=europe-west1 BUCKET=b infra/dataflow/run.sh stream
#   PROJECT=p REGION=europe-west1 BUCKET=b CATALOG=gs://b/catalog/2025-01.parquet infra/dataflow/run.sh sweep
#
# The values Terraform knows come from its outputs (terraform -chdir=infra/terraform output).
# Values must not contain commas (gcloud's --parameters separator). DRY_RUN=1 prints the gcloud command instead of running it.
set -euo pipefail
pipeline=${1:?usage: run.sh sweep|stream}
: "${PROJECT:?set PROJECT}" "${REGION:?set REGION}" "${BUCKET:?set BUCKET}"
WORKER_SA=${WORKER_SA:-trackguard-dataflow@${PROJECT}.iam.gserviceaccount.com}
SUBNETWORK=${SUBNETWORK:-regions/${REGION}/subnetworks/trackguard}
DB_URL_SECRET=${DB_URL_SECRET:-projects/${PROJECT}/secrets/trackguard-db-url}
TEMPLATE=${TEMPLATE:-gs://${BUCKET}/templates/${pipeline}.json}

run() { if [[ -n "${DRY_RUN:-}" ]]; then printf '%q ' "$@"; echo; else "$@"; fi; }

common=(--project="$PROJECT" --region="$REGION" --template-file-gcs-location="$TEMPLATE"
        --service-account-email="$WORKER_SA" --subnetwork="$SUBNETWORK" --disable-public-ips
        --staging-location="gs://${BUCKET}/dataflow/staging" --temp-location="gs://${BUCKET}/dataflow/temp")
case "$pipeline" in
  stream)
    # One long-running job; to deploy new code, launch with --update and the same job name.
    run gcloud dataflow flex-template run "${JOB_NAME:-trackguard-stream}" "${common[@]}" \
        --enable-streaming-engine --max-workers="${MAX_WORKERS:-4}" \
        --parameters="subscription=projects/${PROJECT}/subscriptions/uploads-stream,dead_letter_topic=projects/${PROJECT}/topics/uploads-dead-letter,db_url_secret=${DB_URL_SECRET},gpu=${GPU:-nvidia-l4:1}" ;;
  sweep)
    : "${CATALOG:?set CATALOG=gs://.../manifest.parquet}"
    run gcloud dataflow flex-template run "${JOB_NAME:-trackguard-sweep-$(date -u +%Y%m%d-%H%M%S)}" "${common[@]}" \
        --max-workers="${MAX_WORKERS:-10}" \
        --parameters="catalog=${CATALOG},out=${OUT:-gs://${BUCKET}/sweeps/$(date -u +%Y%m%d)},db_url_secret=${DB_URL_SECRET},gpu=${GPU:-none}" ;;
  *) echo "usage: run.sh sweep|stream" >&2; exit 2 ;;
esac
