"""Least privilege: what each role may do on Kafka (ACLs, SCRAM users) and Redis (ACL users)."""
