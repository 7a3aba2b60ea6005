"""The reviewer web app and the /v1 JSON API (`moderation.web.app.create_app`)."""
