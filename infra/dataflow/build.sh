#!/usr/bin/env bash
# Build and push the images, then write both Flex Template specs to GCS. Run from anywhere.
#
#   PROJECT=my-proj REGION=europe-west1 BUCKET=my-bucket TAG=2025-01-01 infra/dataflow/build.sh
#
# REPO defaults to the Artifact Registry repository Terraform creates (output `image_repository`).
# MODELS_DIR (default .trackguard/models) is baked into the worker image: fill it first
# (`make models`, `trackguard train detector|spam ...`). DRY_RUN=1 prints the commands instead of running them.
set -euo pipefail
: "${PROJECT:?set PROJECT}" "${REGION:?set REGION}" "${BUCKET:?set BUCKET}"
TAG=${TAG:-$(date -u +%Y%m%d-%H%M%S)}
REPO=${REPO:-${REGION}-docker.pkg.dev/${PROJECT}/trackguard}
MODELS_DIR=${MODELS_DIR:-.trackguard/models}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
WORKER="${REPO}/worker:${TAG}"
APP="${REPO}/app:${TAG}"

run() { if [[ -n "${DRY_RUN:-}" ]]; then printf '%q ' "$@"; echo; else "$@"; fi; }

cd "$ROOT"
if [[ -z "${DRY_RUN:-}" && ! -d "$MODELS_DIR" ]]; then
  echo "build.sh: $MODELS_DIR does not exist: run \`make models\` and train the detector and spam models first" >&2
  exit 2
fi
export DOCKER_BUILDKIT=1  # Dockerfile.dockerignore beside each Dockerfile needs BuildKit
run docker build -f infra/docker/Dockerfile --target worker --build-arg "MODELS_DIR=${MODELS_DIR}" -t "$WORKER" .
run docker build -f infra/docker/Dockerfile --target app -t "$APP" .
run docker push "$WORKER"
run docker push "$APP"
for pipeline in sweep stream; do
  template="${REPO}/${pipeline}-template:${TAG}"
  run docker build -f infra/dataflow/Dockerfile --build-arg "WORKER_IMAGE=${WORKER}" \
      --build-arg "PIPELINE=${pipeline}" -t "$template" .
  run docker push "$template"
  extra=()
  if [[ "$pipeline" == stream ]]; then extra+=(--enable-streaming-engine); fi
  run gcloud dataflow flex-template build "gs://${BUCKET}/templates/${pipeline}-${TAG}.json" \
      --project="$PROJECT" --image="$template" --sdk-language=PYTHON \
      --metadata-file="infra/dataflow/${pipeline}-metadata.json" \
      --staging-location="gs://${BUCKET}/dataflow/staging" --temp-location="gs://${BUCKET}/dataflow/temp" \
      --disable-public-ips "${extra[@]}"
  run gcloud storage cp "gs://${BUCKET}/templates/${pipeline}-${TAG}.json" "gs://${BUCKET}/templates/${pipeline}.json"
done
echo "worker image: $WORKER"
echo "app image:    $APP"
echo "templates:    gs://${BUCKET}/templates/{sweep,stream}.json (and -${TAG}.json)"
