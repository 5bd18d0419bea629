"""Prepare a fresh ExaFS instance for netban's tests, without any prompt.

Run from the instance directory (the one holding config.py):

    python setup_exafs.py init KEYS_JSON
        Does what `exafs-db-init` and `exafs-create-admin` do (Alembic migrations, which seed
        roles, rule states, communities 1-3 and org 1 "Uncategorized" = 0.0.0.0/0 ::/0), then
        adds the users, organisations and API keys the tests use, and writes the keys to
        KEYS_JSON.

    python setup_exafs.py whitelist PREFIX EXPIRES_UNIX [COMMENT]
        Adds an ExaFS whitelist entry the way the web UI does (it re-evaluates RTBH rules).
"""

import json
import os
import secrets
import sys
from datetime import datetime, timedelta

sys.path.insert(0, os.getcwd())

import config  # noqa: E402
from flowapp import create_app, db  # noqa: E402


def make_app():
    app = create_app(config.DevelopmentConfig)
    db.init_app(app)
    return app


def new_key():
    return secrets.token_hex(24)


def init(keys_path):
    from flask_migrate import upgrade
    from flowapp.models import ApiKey, Organization, Role, User

    app = make_app()
    with app.app_context():
        upgrade()

        admin_role = Role.query.filter_by(name="admin").one()
        user_role = Role.query.filter_by(name="user").one()
        world = Organization.query.filter_by(arange="0.0.0.0/0 ::/0").order_by(Organization.id).first()
        if world is None or world.id != 1:
            raise SystemExit("exafs-db-init no longer seeds org 1 = 0.0.0.0/0 ::/0; update setup_exafs.py")
        limited = Organization(name="Limited", arange="198.51.100.0/24 2001:db8:100::/48")
        db.session.add(limited)

        def user(uuid, name, role, org):
            u = User(uuid=uuid, name=name, email=uuid)
            db.session.add(u)
            u.role.append(role)
            u.organization.append(org)
            return u

        admin = user("admin@example.com", "Admin", admin_role, world)
        operator = user("operator@example.com", "Operator", admin_role, world)
        limited_user = user("limited@example.com", "Limited", user_role, limited)
        db.session.flush()

        keys = {}

        def key(name, owner, org, machine="127.0.0.1", readonly=False, expires=None):
            keys[name] = new_key()
            db.session.add(
                ApiKey(
                    machine=machine,
                    key=keys[name],
                    readonly=readonly,
                    expires=expires,
                    comment="netban test: " + name,
                    user_id=owner.id,
                    org_id=org.id,
                )
            )

        key("api_key", admin, world)
        key("readonly_key", admin, world, readonly=True)
        key("wrong_machine_key", admin, world, machine="10.9.9.9")
        key("expired_key", admin, world, expires=datetime.now() - timedelta(days=1))
        key("limited_key", limited_user, limited)
        key("operator_key", operator, world)
        db.session.commit()

    with open(keys_path, "w", encoding="utf-8") as f:
        json.dump(keys, f)


def whitelist(prefix, expires, comment):
    from flowapp.models import User
    from flowapp.services.whitelist_service import create_or_update_whitelist

    ip, _, mask = prefix.partition("/")
    app = make_app()
    with app.app_context():
        operator = User.query.filter_by(uuid="operator@example.com").one()
        model, message = create_or_update_whitelist(
            form_data={
                "ip": ip,
                "mask": int(mask),
                "expires": datetime.fromtimestamp(int(expires)),
                "comment": comment,
            },
            user_id=operator.id,
            org_id=1,
            user_email=operator.uuid,
            org_name="Uncategorized",
        )
        print(json.dumps({"id": model.id, "message": message}))


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "init":
        init(sys.argv[2])
    elif len(sys.argv) in (4, 5) and sys.argv[1] == "whitelist":
        whitelist(sys.argv[2], sys.argv[3], sys.argv[4] if len(sys.argv) == 5 else "")
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main()
