# Valid, but denies everything.
listen = ["127.0.0.1:1080"]
