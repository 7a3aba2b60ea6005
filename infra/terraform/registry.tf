resource "google_artifact_registry_repository" "images" {
  location      = var.region
  repository_id = "trackguard"
  format        = "DOCKER"
  description   = "trackguard worker, app and Flex Template images (infra/dataflow/build.sh)"
  depends_on    = [google_project_service.apis]
}
