"""Events and outbound webhooks: what happened to a user's images, builds, transfers and deployments, recorded
once, and delivered signed to the URLs the user asked for (README "Registry lifecycle")."""
