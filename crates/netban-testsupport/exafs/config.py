"""ExaFS configuration for one netban test instance.

Copied verbatim into a fresh temporary directory by netban-testsupport (src/exafs.rs).
Everything lives next to this file: the SQLite database, the log, the JWT secret.
TESTING = True makes ExaFS log ExaBGP commands instead of sending them anywhere.
"""

import os

_HERE = os.path.dirname(os.path.abspath(__file__))


def _read(name):
    with open(os.path.join(_HERE, name), encoding="utf-8") as f:
        return f.read().strip()


class Config:
    SQLALCHEMY_DATABASE_URI = "sqlite:///" + os.path.join(_HERE, "exafs.db")
    SQLALCHEMY_TRACK_MODIFICATIONS = False

    SSO_AUTH = False
    HEADER_AUTH = False
    LOCAL_AUTH = True
    LOCAL_USER_UUID = "admin@example.com"

    EXA_API = "HTTP"
    EXA_API_URL = "http://127.0.0.1:9/"
    TESTING = True
    DEVEL = True

    JWT_SECRET = _read("jwt_secret")
    SECRET_KEY = _read("secret_key")

    USE_RD = False
    ALLOWED_COMMUNITIES = [1, 2, 3]
    EXPIRATION_THRESHOLD = 30

    LOCAL_IP = "127.0.0.1"
    LOCAL_IP6 = "::ffff:127.0.0.1"

    RTBH_MAX_RULES = 100000
    FLOWSPEC4_MAX_RULES = 9000
    FLOWSPEC6_MAX_RULES = 9000

    LOG_FILE = os.path.join(_HERE, "exafs-app.log")
    LOG_LEVEL = "INFO"


class ProductionConfig(Config):
    pass


class DevelopmentConfig(Config):
    pass
