"""Plain-language text for the stable codes in verdicts (reasons, decisions, queues, error codes).

Reviewers read these instead of the codes; the codes themselves stay visible next
to them (distributors and scripts match on the codes, people read the sentences).
An unknown code is shown as itself, so a new pipeline reason never breaks a page.
"""

from __future__ import annotations

from trackguard.contracts import ErrorCode

REASONS: dict[str, str] = {
    "synthetic_voice": "The synthetic-voice detector scored the vocals as likely machine-generated.",
    "matches_enrolled_artist": "The voice matches an artist enrolled in the voiceprint registry.",
    "artist_policy_block": "That artist's policy is to block unlicensed copies of their voice.",
    "artist_policy_allow_licensed": "That artist allows licensed partners to use their voice; this uploader is not "
                                    "one of them.",
    "artist_policy_monitor": "That artist asked us to monitor uses of their voice (review, low priority).",
    "licensed_use": "The uploader is a licensed partner of the matched artist (an attribution entry is recorded).",
    "profile_mismatch": "Delivered to an enrolled artist's profile, but the voice does not match that artist.",
    "undisclosed_ai": "Synthetic vocals that the distributor did not declare as AI-generated.",
    "declared_ai": "The distributor declared this track as AI-generated.",
    "duplicate": "A near-duplicate of an earlier upload (audio fingerprint match).",
    "spam": "The spam classifier's score is over its threshold (see the spam reasons).",
    "synthetic_score_without_vocals": "The synthetic-voice score is high, but no part of the track sounded like "
                                      "singing, so it was not treated as synthetic vocals.",
    "synthetic_score_within_artist_reference": "The synthetic-voice score is high, but the voice matches an "
                                               "enrolled artist whose own reference recordings score as high on "
                                               "this detector, so it was not treated as synthetic vocals.",
    "synthetic_over_matched_original": "A copy of an earlier upload (audio fingerprint match) whose vocals score "
                                       "well above that original's on the same detector: the same song and mix "
                                       "with a differently made vocal, as in an AI cover.",
}

ERRORS: dict[str, str] = {
    ErrorCode.MISSING_FIELD: "A required manifest field is empty.",
    ErrorCode.INVALID_FIELD: "A manifest field has an invalid value.",
    ErrorCode.INVALID_URI: "The audio location is not a path, file:// or gs:// URI.",
    ErrorCode.INVALID_TIMESTAMP: "The upload time is not an ISO-8601 timestamp.",
    ErrorCode.DUPLICATE_UPLOAD_ID: "The same upload id was delivered twice in one manifest.",
    ErrorCode.AUDIO_MISSING: "The audio file does not exist at the given location.",
    ErrorCode.AUDIO_EMPTY: "The audio file is empty.",
    ErrorCode.AUDIO_UNDECODABLE: "The audio file could not be decoded (unknown or corrupt format).",
    ErrorCode.AUDIO_TRUNCATED: "The audio file is cut short (the upload was probably interrupted).",
    ErrorCode.AUDIO_NONFINITE: "The audio contains invalid (NaN or infinite) samples.",
    ErrorCode.AUDIO_TOO_SHORT: "The audio is shorter than the minimum length.",
    ErrorCode.AUDIO_TOO_LONG: "The audio is longer than the maximum length.",
    ErrorCode.SCORING_FAILED: "A model failed while scoring this upload.",
    ErrorCode.INTERNAL_ERROR: "The pipeline hit an internal error on this upload.",
}

DECISIONS: dict[str, str] = {
    "pass": "Passed: nothing to act on.",
    "review": "Needs a human review.",
    "block": "Blocked automatically, pending review.",
    "error": "Could not be scored; the distributor must fix the upload.",
}

QUEUES: dict[str, str] = {
    "impersonation": "Synthetic vocals matching an enrolled artist",
    "profile-mismatch": "Voice does not match the profile it was delivered to",
    "undisclosed-ai": "Undeclared AI-generated vocals",
    "spam": "Likely spam",
    "duplicates": "Near-duplicates of earlier uploads",
    "errors": "Uploads that could not be scored",
    "appeals": "Distributor appeals of a decision",
}

ACTIONS: dict[str, str] = {
    "uphold": "Uphold (block / take down)",
    "dismiss": "Dismiss (false positive)",
    "label_ai": "Label as AI (add the AI disclosure)",
    "credit": "Credit (licensed use: attribute to the matched artist)",
    "escalate": "Escalate to a lead",
}

POLICIES: dict[str, str] = {
    "block": "block unlicensed uses of the voice",
    "allow_licensed": "allow licensed partners, review everyone else",
    "monitor": "monitor: review uses at low priority",
}


def reason(code: str) -> str:
    """The sentence for a verdict reason (``artist_policy_*`` and error codes included)."""
    return REASONS.get(code) or ERRORS.get(code) or code.replace("_", " ")


def error(code: str | None) -> str:
    return "" if code is None else ERRORS.get(code, code.replace("_", " "))


def decision(code: str) -> str:
    return DECISIONS.get(code, code)


def queue(name: str) -> str:
    return QUEUES.get(name, name)


def action(name: str) -> str:
    return ACTIONS.get(name, name)


def policy(name: str) -> str:
    return POLICIES.get(name, name)
