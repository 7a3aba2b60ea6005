# Optional (var.app_image): the app on Cloud Run, plus a job for admin commands that print no secrets
# (`db upgrade` by default). Direct VPC egress reaches the database's private IP.
locals {
  app_enabled = var.app_image != ""
}

resource "google_cloud_run_v2_service" "app" {
  count               = local.app_enabled ? 1 : 0
  name                = "trackguard"
  location            = var.region
  ingress             = "INGRESS_TRAFFIC_ALL"
  deletion_protection = false
  depends_on          = [google_project_service.apis, google_secret_manager_secret_iam_member.app_secrets]

  template {
    service_account = google_service_account.app.email
    scaling {
      min_instance_count = 1 # no cold start for distributor hooks
      max_instance_count = 10
    }
    vpc_access {
      egress = "PRIVATE_RANGES_ONLY"
      network_interfaces {
        network    = google_compute_network.main.id
        subnetwork = google_compute_subnetwork.main.id
      }
    }
    containers {
      image = var.app_image
      ports {
        container_port = 8080
      }
      env {
        name  = "TRACKGUARD_HOME"
        value = "/tmp/trackguard"
      }
      env {
        name = "TRACKGUARD_DB_URL"
        value_source {
          secret_key_ref {
            secret  = google_secret_manager_secret.db_url.secret_id
            version = "latest"
          }
        }
      }
      env {
        name = "TRACKGUARD_SECRET_KEY"
        value_source {
          secret_key_ref {
            secret  = google_secret_manager_secret.session_key.secret_id
            version = "latest"
          }
        }
      }
      dynamic "env" {
        for_each = var.app_env
        content {
          name  = env.key
          value = env.value
        }
      }
    }
  }
}

resource "google_cloud_run_v2_service_iam_member" "public" {
  count    = local.app_enabled && var.app_public ? 1 : 0
  name     = google_cloud_run_v2_service.app[0].name
  location = var.region
  role     = "roles/run.invoker"
  member   = "allUsers"
}

resource "google_cloud_run_v2_job" "admin" {
  count               = local.app_enabled ? 1 : 0
  name                = "trackguard-admin"
  location            = var.region
  deletion_protection = false
  depends_on          = [google_project_service.apis, google_secret_manager_secret_iam_member.app_secrets]

  template {
    template {
      service_account = google_service_account.app.email
      max_retries     = 0
      vpc_access {
        egress = "PRIVATE_RANGES_ONLY"
        network_interfaces {
          network    = google_compute_network.main.id
          subnetwork = google_compute_subnetwork.main.id
        }
      }
      containers {
        image   = var.app_image
        command = ["trackguard"]
        args    = ["db", "upgrade"]
        env {
          name = "TRACKGUARD_DB_URL"
          value_source {
            secret_key_ref {
              secret  = google_secret_manager_secret.db_url.secret_id
              version = "latest"
            }
          }
        }
      }
    }
  }
}
