# Secret values written here are also in the Terraform state: keep the state bucket private.
resource "google_secret_manager_secret" "db_password" {
  secret_id = "trackguard-db-password"
  replication {
    auto {}
  }
  depends_on = [google_project_service.apis]
}

resource "google_secret_manager_secret_version" "db_password" {
  secret      = google_secret_manager_secret.db_password.id
  secret_data = random_password.db.result
}

# The whole URL, as `--db-url` / TRACKGUARD_DB_URL take it (ssl: the instance accepts encrypted connections only).
resource "google_secret_manager_secret" "db_url" {
  secret_id = "trackguard-db-url"
  replication {
    auto {}
  }
  depends_on = [google_project_service.apis]
}

resource "google_secret_manager_secret_version" "db_url" {
  secret = google_secret_manager_secret.db_url.id
  secret_data = format("postgresql+psycopg://%s:%s@%s:5432/%s?sslmode=require", google_sql_user.trackguard.name,
  random_password.db.result, google_sql_database_instance.main.private_ip_address, google_sql_database.trackguard.name)
}

# TRACKGUARD_SECRET_KEY of the app: signs session cookies and CSRF tokens.
resource "random_password" "session_key" {
  length  = 64
  special = false
}

resource "google_secret_manager_secret" "session_key" {
  secret_id = "trackguard-session-key"
  replication {
    auto {}
  }
  depends_on = [google_project_service.apis]
}

resource "google_secret_manager_secret_version" "session_key" {
  secret      = google_secret_manager_secret.session_key.id
  secret_data = random_password.session_key.result
}
