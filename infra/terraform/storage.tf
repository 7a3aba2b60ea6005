resource "google_storage_bucket" "main" {
  name                        = var.bucket_name
  location                    = var.region
  uniform_bucket_level_access = true # required by the IAM conditions on prefixes (iam.tf)
  public_access_prevention    = "enforced"
  depends_on                  = [google_project_service.apis]

  versioning {
    enabled = true
  }

  # Dataflow staging and temp files are scratch.
  lifecycle_rule {
    condition {
      age            = var.staging_retention_days
      matches_prefix = ["dataflow/"]
    }
    action {
      type = "Delete"
    }
  }

  # Versions replaced or deleted are kept for a while (recovery), not forever.
  lifecycle_rule {
    condition {
      days_since_noncurrent_time = var.noncurrent_retention_days
    }
    action {
      type = "Delete"
    }
  }
}

# Optional: GCS itself announces every finished upload object on the uploads topic.
data "google_storage_project_service_account" "gcs" {}

resource "google_pubsub_topic_iam_member" "gcs_notifications" {
  count  = var.gcs_notifications ? 1 : 0
  topic  = google_pubsub_topic.uploads.id
  role   = "roles/pubsub.publisher"
  member = "serviceAccount:${data.google_storage_project_service_account.gcs.email_address}"
}

resource "google_storage_notification" "uploads" {
  count              = var.gcs_notifications ? 1 : 0
  bucket             = google_storage_bucket.main.name
  payload_format     = "JSON_API_V1"
  topic              = google_pubsub_topic.uploads.id
  event_types        = ["OBJECT_FINALIZE"]
  object_name_prefix = "uploads/"
  depends_on         = [google_pubsub_topic_iam_member.gcs_notifications]
}
