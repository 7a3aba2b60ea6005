# Two identities with only what each does. Object-level grants are limited to key prefixes with IAM
# conditions (possible because the bucket has uniform bucket-level access).
locals {
  objects         = "projects/_/buckets/${google_storage_bucket.main.name}/objects"
  dataflow_member = "serviceAccount:${google_service_account.dataflow.email}"
  app_member      = "serviceAccount:${google_service_account.app.email}"
}

# ---------------------------------------------------------------------------- Dataflow launcher + workers
resource "google_service_account" "dataflow" {
  account_id   = "trackguard-dataflow"
  display_name = "trackguard Dataflow launcher and workers (sweep, stream)"
}

resource "google_project_iam_member" "dataflow_worker" {
  for_each = toset(["roles/dataflow.worker", "roles/cloudsql.client"])
  project  = var.project
  role     = each.value
  member   = local.dataflow_member
}

# Read audio, manifests and templates anywhere in the bucket (this also allows listing, which Beam's
# file matching needs and which a prefix condition cannot grant).
resource "google_storage_bucket_iam_member" "dataflow_read" {
  bucket = google_storage_bucket.main.name
  role   = "roles/storage.objectViewer"
  member = local.dataflow_member
}

# Write (and replace, delete temp files) only Dataflow scratch and sweep outputs.
resource "google_storage_bucket_iam_member" "dataflow_write" {
  bucket = google_storage_bucket.main.name
  role   = "roles/storage.objectAdmin"
  member = local.dataflow_member
  condition {
    title       = "dataflow-and-sweeps-prefixes"
    description = "staging/temp files and sweep outputs only"
    expression  = "resource.name.startsWith(\"${local.objects}/dataflow/\") || resource.name.startsWith(\"${local.objects}/sweeps/\")"
  }
}

resource "google_pubsub_subscription_iam_member" "dataflow_subscriber" {
  for_each     = toset(["roles/pubsub.subscriber", "roles/pubsub.viewer"])
  subscription = google_pubsub_subscription.stream.id
  role         = each.value
  member       = local.dataflow_member
}

# The stream writes messages that are not upload events to the dead-letter topic itself.
resource "google_pubsub_topic_iam_member" "dataflow_dead_letter" {
  topic  = google_pubsub_topic.dead_letter.id
  role   = "roles/pubsub.publisher"
  member = local.dataflow_member
}

# The launcher reads the database URL (flex_args.read_secret).
resource "google_secret_manager_secret_iam_member" "dataflow_db_url" {
  secret_id = google_secret_manager_secret.db_url.id
  role      = "roles/secretmanager.secretAccessor"
  member    = local.dataflow_member
}

resource "google_artifact_registry_repository_iam_member" "dataflow_pull" {
  location   = google_artifact_registry_repository.images.location
  repository = google_artifact_registry_repository.images.name
  role       = "roles/artifactregistry.reader"
  member     = local.dataflow_member
}

# ---------------------------------------------------------------------------- app (Cloud Run)
resource "google_service_account" "app" {
  account_id   = "trackguard-app"
  display_name = "trackguard upload API and review app"
}

resource "google_project_iam_member" "app_sql" {
  project = var.project
  role    = "roles/cloudsql.client"
  member  = local.app_member
}

# Store uploads and read them back (content sniffing, status) under uploads/ only.
resource "google_storage_bucket_iam_member" "app_uploads" {
  for_each = toset(["roles/storage.objectCreator", "roles/storage.objectViewer"])
  bucket   = google_storage_bucket.main.name
  role     = each.value
  member   = local.app_member
  condition {
    title      = "uploads-prefix"
    expression = "resource.name.startsWith(\"${local.objects}/uploads/\")"
  }
}

# Signed PUT URLs for distributors: the app signs with its own identity (IAM signBlob on itself).
resource "google_service_account_iam_member" "app_signs_urls" {
  service_account_id = google_service_account.app.name
  role               = "roles/iam.serviceAccountTokenCreator"
  member             = local.app_member
}

resource "google_pubsub_topic_iam_member" "app_publisher" {
  topic  = google_pubsub_topic.uploads.id
  role   = "roles/pubsub.publisher"
  member = local.app_member
}

resource "google_secret_manager_secret_iam_member" "app_secrets" {
  for_each = {
    db_url      = google_secret_manager_secret.db_url.id
    session_key = google_secret_manager_secret.session_key.id
  }
  secret_id = each.value
  role      = "roles/secretmanager.secretAccessor"
  member    = local.app_member
}
