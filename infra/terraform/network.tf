# A private network: Dataflow workers without public IPs, Cloud SQL on a private IP only.
resource "google_compute_network" "main" {
  name                    = "trackguard"
  auto_create_subnetworks = false
  depends_on              = [google_project_service.apis]
}

resource "google_compute_subnetwork" "main" {
  name                     = "trackguard"
  region                   = var.region
  network                  = google_compute_network.main.id
  ip_cidr_range            = "10.10.0.0/20"
  private_ip_google_access = true # workers reach GCS, Pub/Sub, Artifact Registry without public IPs
}

# Dataflow workers talk to each other on 12345-12346 (shuffle, streaming).
resource "google_compute_firewall" "dataflow_internal" {
  name        = "trackguard-dataflow-internal"
  network     = google_compute_network.main.id
  direction   = "INGRESS"
  source_tags = ["dataflow"]
  target_tags = ["dataflow"]
  allow {
    protocol = "tcp"
    ports    = ["12345-12346"]
  }
}

resource "google_compute_global_address" "sql_peering" {
  name          = "trackguard-sql-peering"
  purpose       = "VPC_PEERING"
  address_type  = "INTERNAL"
  prefix_length = 16
  network       = google_compute_network.main.id
}

resource "google_service_networking_connection" "sql" {
  network                 = google_compute_network.main.id
  service                 = "servicenetworking.googleapis.com"
  reserved_peering_ranges = [google_compute_global_address.sql_peering.name]
}
