#!/usr/bin/python3
"""Manage Kafka ACLs with kafka-python's KafkaAdminClient over SASL (PLAIN).

  acl_admin.py --bootstrap H:P --user U --password P create TYPE:NAME:PATTERN:PRINCIPAL:OP:PERM ...
  acl_admin.py ... describe           # every binding
  acl_admin.py ... delete PRINCIPAL   # every binding of a principal

Prints one JSON line: {"ok": bool, "acls": [...], "error": "..."}.
"""
import argparse
import json
import sys

from kafka.admin import (ACL, ACLFilter, ACLOperation, ACLPermissionType, ACLResourcePatternType,
                         KafkaAdminClient, ResourcePattern, ResourcePatternFilter, ResourceType)


def describe(acl):
    p = acl.resource_pattern
    return "%s:%s:%s:%s:%s:%s" % (p.resource_type.name, p.resource_name, p.pattern_type.name, acl.principal,
                                  acl.operation.name, acl.permission_type.name)


def every(principal=None):
    return ACLFilter(principal=principal, host="*", operation=ACLOperation.ANY,
                     permission_type=ACLPermissionType.ANY,
                     resource_pattern=ResourcePatternFilter(ResourceType.ANY, None, ACLResourcePatternType.ANY))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--user", required=True)
    ap.add_argument("--password", required=True)
    ap.add_argument("op", choices=["create", "describe", "delete"])
    ap.add_argument("items", nargs="*")
    args = ap.parse_args()
    summary = {"ok": False}
    try:
        admin = KafkaAdminClient(bootstrap_servers=args.bootstrap, security_protocol="SASL_PLAINTEXT",
                                 sasl_mechanism="PLAIN", sasl_plain_username=args.user,
                                 sasl_plain_password=args.password, request_timeout_ms=15000)
        if args.op == "create":
            acls = []
            for item in args.items:
                rtype, name, pattern, ptype, pname, op, perm = item.split(":")
                acls.append(ACL(principal="%s:%s" % (ptype, pname), host="*", operation=ACLOperation[op],
                                permission_type=ACLPermissionType[perm],
                                resource_pattern=ResourcePattern(ResourceType[rtype], name,
                                                                 ACLResourcePatternType[pattern])))
            result = admin.create_acls(acls)
            summary["failed"] = [str(e) for _, e in result["failed"]]
            summary["ok"] = not result["failed"]
        elif args.op == "describe":
            acls, error = admin.describe_acls(every())
            summary["acls"] = sorted(describe(a) for a in acls)
            summary["ok"] = True
        else:
            results = admin.delete_acls([every(args.items[0])])
            summary["deleted"] = sorted(describe(a) for _, matches, _ in results for a, _ in matches)
            summary["ok"] = True
        admin.close()
    except Exception as e:
        summary["error"] = "%s: %s" % (type(e).__name__, e)
    print(json.dumps(summary))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
