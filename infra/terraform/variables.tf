variable "project" {
  description = "Google Cloud project id."
  type        = string
}

variable "region" {
  description = "Region of the bucket, database, Dataflow jobs and Cloud Run service (pick one with L4 GPUs for the stream)."
  type        = string
  default     = "europe-west1"
}

variable "bucket_name" {
  description = "Bucket for uploaded audio (uploads/), sweep manifests and outputs (catalog/, sweeps/), Dataflow staging (dataflow/) and templates (templates/). Globally unique."
  type        = string
}

variable "staging_retention_days" {
  description = "Objects under dataflow/ (staging, temp) are deleted after this many days."
  type        = number
  default     = 7
}

variable "noncurrent_retention_days" {
  description = "Overwritten or deleted object versions are kept this many days (versioning protects uploads)."
  type        = number
  default     = 30
}

variable "db_tier" {
  description = "Cloud SQL machine tier (Enterprise edition)."
  type        = string
  default     = "db-custom-2-7680"
}

variable "db_availability" {
  description = "ZONAL, or REGIONAL for a standby in another zone."
  type        = string
  default     = "REGIONAL"
}

variable "db_deletion_protection" {
  description = "Refuse `terraform destroy` of the database (turn off only to tear down a test project)."
  type        = bool
  default     = true
}

variable "gcs_notifications" {
  description = "Publish the bucket's OBJECT_FINALIZE notifications (uploads/ prefix) to the uploads topic. Off by default: the upload API publishes its own events after the ledger commit, and notification messages are not UploadEvents (the stream dead-letters them)."
  type        = bool
  default     = false
}

variable "ack_deadline_s" {
  description = "Ack deadline of the uploads-stream subscription (pipelines.events.ensure_topology uses 60)."
  type        = number
  default     = 60
}

variable "max_delivery_attempts" {
  description = "Deliveries before a message goes to uploads-dead-letter (ensure_topology uses 5)."
  type        = number
  default     = 5
}

variable "app_image" {
  description = "Image of the app (infra/docker/Dockerfile target app). Empty: no Cloud Run service is created."
  type        = string
  default     = ""
}

variable "app_public" {
  description = "Let unauthenticated callers reach the Cloud Run service (distributor hooks are HMAC-signed, reviewers sign in)."
  type        = bool
  default     = true
}

variable "app_env" {
  description = "Extra environment of the app container (e.g. the object store and Pub/Sub settings the upload API reads)."
  type        = map(string)
  default     = {}
}
