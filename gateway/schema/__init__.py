"""Wire models and the request summary the rest of the gateway works on."""
