# Names equal pipelines/events.py: TOPIC, DEAD_LETTER_TOPIC, SUBSCRIPTION, DEAD_LETTER_SUBSCRIPTION
# (tests/test_infra.py checks it). Production creates them here; ensure_topology is for the emulator.
resource "google_pubsub_topic" "uploads" {
  name                       = "uploads"
  message_retention_duration = "604800s" # a week of replay (seek) after an incident
  depends_on                 = [google_project_service.apis]
}

resource "google_pubsub_topic" "dead_letter" {
  name                       = "uploads-dead-letter"
  message_retention_duration = "604800s"
  depends_on                 = [google_project_service.apis]
}

resource "google_pubsub_subscription" "stream" {
  name                       = "uploads-stream"
  topic                      = google_pubsub_topic.uploads.id
  ack_deadline_seconds       = var.ack_deadline_s
  message_retention_duration = "604800s"

  dead_letter_policy {
    dead_letter_topic     = google_pubsub_topic.dead_letter.id
    max_delivery_attempts = var.max_delivery_attempts
  }

  retry_policy {
    minimum_backoff = "10s"
    maximum_backoff = "600s"
  }

  expiration_policy {
    ttl = "" # never expires, even while the stream job is stopped
  }
}

# Kept so dead letters can be read (and re-published) by an operator; nothing consumes it automatically.
resource "google_pubsub_subscription" "dead_letter" {
  name                       = "uploads-dead-letter-sub"
  topic                      = google_pubsub_topic.dead_letter.id
  ack_deadline_seconds       = var.ack_deadline_s
  message_retention_duration = "604800s"

  expiration_policy {
    ttl = ""
  }
}

# Pub/Sub's own service agent moves undeliverable messages: it must publish to the dead-letter topic
# and acknowledge on the source subscription.
locals {
  pubsub_agent = "serviceAccount:service-${data.google_project.this.number}@gcp-sa-pubsub.iam.gserviceaccount.com"
}

resource "google_pubsub_topic_iam_member" "agent_dead_letter_publisher" {
  topic  = google_pubsub_topic.dead_letter.id
  role   = "roles/pubsub.publisher"
  member = local.pubsub_agent
}

resource "google_pubsub_subscription_iam_member" "agent_stream_subscriber" {
  subscription = google_pubsub_subscription.stream.id
  role         = "roles/pubsub.subscriber"
  member       = local.pubsub_agent
}
