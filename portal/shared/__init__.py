"""Helpers several apps use (emails, PDFs, files, queueing, http, pagination, spreadsheets,
locking, sealing, redirects, log masking, admin and form helpers, a batch of UUIDs checked at
once, times written as JSON writes them). They import no app but `portal.models`; the apps
import them, never the project's wiring (docs/architecture.md)."""
