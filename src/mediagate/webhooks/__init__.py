"""Webhooks: workspace endpoints, the transactional outbox and the signed dispatcher."""
