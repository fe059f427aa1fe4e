"""Deployment artefacts: compose stack, Dockerfile, self-hosted vLLM launch configs, Kubernetes manifests."""
