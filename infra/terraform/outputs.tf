output "bucket" {
  value = google_storage_bucket.main.name
}

output "image_repository" {
  description = "REPO for infra/dataflow/build.sh"
  value       = "${var.region}-docker.pkg.dev/${var.project}/${google_artifact_registry_repository.images.repository_id}"
}

output "uploads_topic" {
  value = google_pubsub_topic.uploads.id
}

output "stream_subscription" {
  description = "subscription parameter of the stream template"
  value       = google_pubsub_subscription.stream.id
}

output "dead_letter_topic" {
  description = "dead_letter_topic parameter of the stream template"
  value       = google_pubsub_topic.dead_letter.id
}

output "dead_letter_subscription" {
  value = google_pubsub_subscription.dead_letter.id
}

output "db_instance_connection_name" {
  value = google_sql_database_instance.main.connection_name
}

output "db_private_ip" {
  value = google_sql_database_instance.main.private_ip_address
}

output "db_url_secret" {
  description = "db_url_secret parameter of both templates"
  value       = google_secret_manager_secret.db_url.id
}

output "dataflow_service_account" {
  value = google_service_account.dataflow.email
}

output "app_service_account" {
  value = google_service_account.app.email
}

output "subnetwork" {
  description = "--subnetwork of Dataflow jobs"
  value       = "regions/${var.region}/subnetworks/${google_compute_subnetwork.main.name}"
}

output "app_url" {
  value = local.app_enabled ? google_cloud_run_v2_service.app[0].uri : null
}
