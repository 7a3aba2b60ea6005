resource "google_sql_database_instance" "main" {
  name                = "trackguard"
  region              = var.region
  database_version    = "POSTGRES_16"
  deletion_protection = var.db_deletion_protection
  depends_on          = [google_service_networking_connection.sql]

  settings {
    edition           = "ENTERPRISE"
    tier              = var.db_tier
    availability_type = var.db_availability
    disk_autoresize   = true

    ip_configuration {
      ipv4_enabled    = false # private IP only
      private_network = google_compute_network.main.id
      ssl_mode        = "ENCRYPTED_ONLY"
    }

    backup_configuration {
      enabled                        = true
      point_in_time_recovery_enabled = true
      start_time                     = "02:00"
      backup_retention_settings {
        retained_backups = 14
      }
    }

    maintenance_window {
      day  = 7
      hour = 3
    }

    database_flags {
      name  = "max_connections"
      value = "200" # workers x DoFn instances each hold a small pool
    }
  }
}

resource "google_sql_database" "trackguard" {
  name     = "trackguard"
  instance = google_sql_database_instance.main.name
}

resource "random_password" "db" {
  length  = 32
  special = false # goes into a URL
}

resource "google_sql_user" "trackguard" {
  name     = "trackguard"
  instance = google_sql_database_instance.main.name
  password = random_password.db.result
}
