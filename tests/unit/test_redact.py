from __future__ import annotations

import pytest

from runbook_kit.redact import MASK, Redactor, is_secret_name, redact, redact_text

R = Redactor(["my-known-secret-value"])


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("key AKIAIOSFODNN7EXAMPLE used", "AKIAIOSFODNN7EXAMPLE"),
        ("ASIAY34FZKBOKMUTVV7A", "ASIAY34FZKBOKMUTVV7A"),
        ("secret: wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"),
        ("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"),
        ("aws_session_token=FwoGZXIvYXdzEJr//////////wEaDHNvbWV0b2tlbg", "FwoGZXIvYXdzEJr"),
        ("postgresql://app:p4ss-w0rd@db:5432/x", "p4ss-w0rd"),
        ("host=db password=p4ss-w0rd user=app", "p4ss-w0rd"),
        ("Authorization: Bearer abcdef0123456789abcdef", "abcdef0123456789abcdef"),
        ('{"client_secret": "zz-top-secret-zz"}', "zz-top-secret-zz"),
        ("DB_PASSWORD=opensesame", "opensesame"),
        ("X-Amz-Security-Token: IQoJb3JpZ2luX2VjEJr0bXlzZXNzaW9udG9rZW4", "IQoJb3JpZ2luX2Vj"),
        ("-----BEGIN RSA PRIVATE KEY-----\nMIIEow\n-----END RSA PRIVATE KEY-----", "MIIEow"),
        ("value my-known-secret-value here", "my-known-secret-value"),
    ],
)
def test_secrets_are_masked(text, secret):
    out = R.text(text)
    assert secret not in out and MASK in out


@pytest.mark.parametrize(
    "text",
    [
        "commit 3f786850e387550fdab836ed7e6dc881de23001b",  # a git sha: lowercase hex, 40 chars
        "pods api-7d9f8b-x2x1 OOMKilled exit 137",
        "postgresql://orders-db:5432/orders",
        "NextToken pagination ended",
    ],
)
def test_ordinary_text_is_kept(text):
    assert R.text(text) == text


def test_structures_secret_keys_and_kubernetes_secrets():
    obj = {
        "kind": "Secret",
        "data": {"password": "c2VjcmV0"},
        "metadata": {"name": "db"},
        "outputs": [{"data": {"image/png": "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk"}}],
        "api_token": "abc123456",
    }
    out = R.value(obj)
    assert out["data"] == {"password": MASK} and out["api_token"] == MASK
    assert out["metadata"] == {"name": "db"}
    assert out["outputs"][0]["data"]["image/png"] == obj["outputs"][0]["data"]["image/png"]


def test_environment_values_with_secret_names(monkeypatch):
    monkeypatch.setenv("ORDERS_DB_PASSWORD", "Tr0ub4dor&3")
    monkeypatch.setenv("HOSTNAME", "not-a-secret-host")
    assert redact("pw is Tr0ub4dor&3 on not-a-secret-host") == f"pw is {MASK} on not-a-secret-host"


def test_idempotent():
    once = R.text("postgresql://a:b-secret@h/d AKIAIOSFODNN7EXAMPLE")
    assert R.text(once) == once


# --- names: the last word decides ---------------------------------------------------------------

SECRET_NAMES = [
    "AWS_SECRET_ACCESS_KEY", "GITHUB_TOKEN", "db_password", "CREDENTIALS", "credentials", "PGPASSWORD",
    "api_key", "apiKey", "x-api-key", "access_key", "secret_access_key", "secretAccessKey", "private_key",
    "signing_key", "client_secret", "clientSecret", "AWS_SESSION_TOKEN", "X-Amz-Security-Token", "tokens",
    "api_keys", "passwd", "DB_PASS", "MYSQL_PWD", "tls.key", "client-key-data", "SecretString",
    "password2", "authToken", "Authorization", "Cookie", "AWS_ACCESS_KEY_ID",
]
NOT_SECRET_NAMES = [
    "HOME", "PWD", "OLDPWD", "namespace", "KEYMAP", "KEYTIMEOUT", "key", "Key", "KEY", "SecretName",
    "secretName", "secret_ref", "secretKeyRef", "secret-volume", "token_expiration_seconds",
    "tokenExpirationSeconds", "expirationSeconds", "NextToken", "next_token", "page_token", "max_tokens",
    "NoCredentialsError", "PASSWORD_FILE", "AWS_SHARED_CREDENTIALS_FILE", "KMS_KEY_ID", "key_id", "SecretId",
    "monkey", "keyboard", "primary_key_column", "automountServiceAccountToken_enabled",
]


@pytest.mark.parametrize("name", SECRET_NAMES)
def test_secret_names(name):
    assert is_secret_name(name)


@pytest.mark.parametrize("name", NOT_SECRET_NAMES)
def test_names_that_only_mention_a_secret(name):
    assert not is_secret_name(name)


def test_is_secret_name_never_raises():
    assert not is_secret_name("") and not is_secret_name(None) and not is_secret_name("___")  # type: ignore[arg-type]


# --- over-redaction: harmless text stays exactly as it was --------------------------------------

HARMLESS = [
    "NoCredentialsError: Unable to locate credentials",
    "botocore.exceptions.NoCredentialsError: Unable to locate credentials",
    "SecretName:  app-tls",
    "    SecretName:  app-tls\n    Optional:    false",
    "secretName: app-tls",
    "tokenExpirationSeconds: 3607",
    "- serviceAccountToken:\n    expirationSeconds: 3607\n    path: token",
    "volumes:\n- name: secret-volume\n  secret:\n    secretName: app-tls",
    "  - name: DB_PASSWORD\n    valueFrom:\n      secretKeyRef:\n        key: password\n        name: db",
    "tolerations:\n- effect: NoExecute\n  key: node.kubernetes.io/not-ready\n  operator: Exists",
    "{'Key': 'incidents/INC-1/x.ipynb'}",
    "{'Contents': [{'Key': 'incidents/INC-1/x.ipynb', 'Size': 10}],\n"
    " 'NextToken': 'abc', 'IsTruncated': False}",
    "NextToken: eyJuZXh0IjoxfQ",
    "tokens: list = []  # help",
    'password: str = ""',
    "password: str = ''  # the DB password",
    "api_key = None",
    "api_key: str | None = None",
    "automountServiceAccountToken: false",
    "Data\n====\npassword:  8 bytes\nusername:  5 bytes",
    "FATAL:  password authentication failed for user \"oncall\"",
    "An error occurred (ExpiredToken) when calling the GetObject operation: The provided token has expired.",
    "Invalid token: signature verification failed",
    "KeyError: 'password'",
    "token_expiration_seconds=3607 secret_ref=app-tls key_id=abcd1234",
    "password = os.environ['DB_PASSWORD']",
    "api_key = getpass()",
    "secret = client.get_secret_value(SecretId=name)",
    "Basic understanding of bearer tokens",
    "psql --password --host db",
]


@pytest.mark.parametrize("text", HARMLESS)
def test_harmless_text_is_kept_exactly(text):
    assert R.text(text) == text


@pytest.mark.parametrize(
    "text",
    [
        "password=None", "password: null", "secret: True", "token: false", 'api_key: ""', "api_key=''",
        "password = []", "token: {}", "password: str", "tokens: list", "creds: dict", "token: int",
        "PASSWORD=${DB_PASSWORD}", "password: ********", "api_key: <your-api-key>", f"password={MASK}",
    ],
)
def test_literals_and_placeholders_are_not_secrets(text):
    assert R.text(text) == text


def test_names_are_kept_as_dict_keys_and_non_secret_keys_keep_their_values():
    obj = {"Key": "incidents/INC-1/x.ipynb", "NextToken": "abc", "secretName": "app-tls",
           "tokenExpirationSeconds": 3607, "key": "node.kubernetes.io/not-ready", "password": "",
           "token": None}
    assert R.value(obj) == obj


# --- known values: long ones everywhere, short or common ones only in value positions ----------

def test_short_and_common_known_values_are_not_hunted_in_free_text():
    r = Redactor.from_environment({"AWS_SECRET_ACCESS_KEY": "testing", "PGPASSWORD": "pw1",
                                   "DB_PASSWORD": "abc", "ADMIN_PASSWORD": "changeme"})
    for text in ["running the testing suite", "NoCredentialsError: Unable to locate credentials",
                 "server pw1 is up", "abc def", "please changeme later"]:
        assert r.text(text) == text


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("PGPASSWORD=pw1 psql -h db", "pw1"),
        ("host=db password=pw1 user=x", "pw1"),
        ("postgresql://u:pw1@h/db", "pw1"),
        ('{"password": "abc"}', "abc"),
        ("db_password: abc", "abc"),
        ("aws_secret_access_key = testing", "testing"),
        ("postgresql://u:testing@h/db", "testing"),
        ("export AWS_SECRET_ACCESS_KEY=testing", "testing"),
    ],
)
def test_short_and_common_known_values_are_masked_in_value_positions(text, value):
    r = Redactor.from_environment({"AWS_SECRET_ACCESS_KEY": "testing", "PGPASSWORD": "pw1",
                                   "DB_PASSWORD": "abc"})
    out = r.text(text)
    assert value not in out.replace(MASK, "") and MASK in out


def test_long_known_values_are_masked_everywhere_also_escaped():
    r = Redactor.from_environment({"ORDERS_DB_PASSWORD": 'Tr0ub4dor&3"x/y'},
                                  extra={"api_tokens": ["tok-123456789"]})
    for text in ['pw Tr0ub4dor&3"x/y ok', 'json "Tr0ub4dor&3\\"x/y"', "url Tr0ub4dor%263%22x%2Fy",
                 "html Tr0ub4dor&amp;3&quot;x/y", "listed tok-123456789"]:
        out = r.text(text)
        assert MASK in out and "Tr0ub4dor" not in out and "tok-123456789" not in out, text


def test_environment_names_that_only_mention_a_secret_give_no_known_values():
    r = Redactor.from_environment({"AWS_SHARED_CREDENTIALS_FILE": "/home/oncall/.aws/credentials",
                                   "SECRET_NAME": "orders-db-credentials"})
    assert r.text("read /home/oncall/.aws/credentials for orders-db-credentials") == (
        "read /home/oncall/.aws/credentials for orders-db-credentials")


# --- Kubernetes Secrets printed as text ----------------------------------------------------------

B64_KEY = "LS0tLS1CRUdJTiBSU0EgUFJJVkFURSBLRVktLS0tLQpNSUlFb3dJQkFBS0NBUUVBdGVzdA=="
SECRET_TEXTS = [
    # print(secret) of a dict, and the kubernetes client's repr (pprint of to_dict())
    "{'api_version': 'v1', 'data': {'tls.key': '" + B64_KEY + "', 'username': 'YWRtaW4='}, "
    "'kind': 'Secret', 'metadata': {'name': 'app-tls'}, 'type': 'kubernetes.io/tls'}",
    "{'api_version': 'v1',\n 'data': {'tls.key': '" + B64_KEY[:40] + "'\n"
    "                     '" + B64_KEY[40:] + "',\n          'username': 'YWRtaW4='},\n 'immutable': None,\n"
    " 'kind': 'Secret',\n"
    " 'metadata': {'name': 'app-tls'},\n 'string_data': None,\n 'type': 'kubernetes.io/tls'}",
    # the client's print(): keyword form, no braces around the object
    "api_version='v1' data={'tls.key': '" + B64_KEY + "', 'username': 'YWRtaW4='} immutable=None "
    "kind='Secret' metadata={'name': 'app-tls'} string_data=None type='kubernetes.io/tls'",
    # kubectl get secret -o json, with the last-applied annotation carrying the data again
    '{\n    "apiVersion": "v1",\n    "data": {\n        "tls.key": "' + B64_KEY + '",\n'
    '        "username": "YWRtaW4="\n    },\n    "kind": "Secret",\n    "metadata": {\n'
    '        "annotations": {\n            "kubectl.kubernetes.io/last-applied-configuration": '
    '"{\\"apiVersion\\":\\"v1\\",\\"data\\":{\\"username\\":\\"YWRtaW4=\\"},\\"kind\\":\\"Secret\\"}\\n"\n'
    '        },\n        "name": "app-tls"\n    }\n}',
    # kubectl get secret -o yaml
    "apiVersion: v1\ndata:\n  tls.key: " + B64_KEY + "\n  username: YWRtaW4=\nkind: Secret\n"
    "metadata:\n  name: app-tls\n  namespace: prod\ntype: kubernetes.io/tls\n",
    # kubectl get secrets -o yaml (a List), stringData with a block scalar
    "apiVersion: v1\nitems:\n- apiVersion: v1\n  kind: Secret\n  metadata:\n    name: app-tls\n"
    "  stringData:\n    tls.key: |\n      " + B64_KEY + "\n      more\n    username: YWRtaW4=\nkind: List\n",
    # the same dict as it appears in a text/html output
    "<pre>{&#x27;data&#x27;: {&#x27;tls.key&#x27;: &#x27;" + B64_KEY + "&#x27;, &#x27;username&#x27;: "
    "&#x27;YWRtaW4=&#x27;}, &#x27;kind&#x27;: &#x27;Secret&#x27;, &#x27;metadata&#x27;: {&#x27;name&#x27;: "
    "&#x27;app-tls&#x27;}}</pre>",
]


@pytest.mark.parametrize("text", SECRET_TEXTS)
def test_every_value_of_a_kubernetes_secret_printed_as_text_is_masked(text):
    out = R.text(text)
    assert "YWRtaW4=" not in out and B64_KEY[:40] not in out and B64_KEY[40:] not in out
    assert "username" in out and "tls.key" in out and "app-tls" in out  # names stay
    assert R.text(out) == out


def test_kubernetes_client_repr_and_print():
    client = pytest.importorskip("kubernetes.client")
    secret = client.V1Secret(api_version="v1", kind="Secret", type="Opaque",
                             metadata=client.V1ObjectMeta(name="db", namespace="prod"),
                             data={"username": "YWRtaW4=", "cert": "Y2VydGlmaWNhdGU=" * 10})
    for text in (repr(secret), str(secret)):
        out = R.text(text)
        assert "YWRtaW4=" not in out and "Y2VydGlmaWNhdGU=" not in out and "'db'" in out


@pytest.mark.parametrize(
    "text",
    [
        "{'api_version': 'v1', 'data': {'config.yaml': 'bG9nTGV2ZWw6IGluZm8='}, 'kind': 'ConfigMap'}",
        "apiVersion: v1\ndata:\n  config.yaml: bG9nTGV2ZWw6IGluZm8=\nkind: ConfigMap\n",
        # a ConfigMap next to a Secret in a List: only the Secret's data goes
        "apiVersion: v1\nitems:\n- apiVersion: v1\n  data:\n    username: YWRtaW4=\n  kind: Secret\n"
        "- apiVersion: v1\n  data:\n    config.yaml: bG9nTGV2ZWw6IGluZm8=\n  kind: ConfigMap\nkind: List\n",
    ],
)
def test_data_of_other_kinds_is_kept(text):
    out = R.text(text)
    assert "bG9nTGV2ZWw6IGluZm8=" in out and "YWRtaW4=" not in out


def test_structured_secrets_and_secret_lists():
    obj = {"kind": "SecretList", "items": [{"kind": None, "string_data": {"a": "x1"}, "data": {"b": "eDI="},
                                            "metadata": {"name": "s"}}]}
    out = R.value(obj)
    item = out["items"][0]
    assert item["data"] == {"b": MASK} and item["string_data"] == {"a": MASK}
    assert item["metadata"] == {"name": "s"}
    assert item["kind"] is None and "kind" in item


# --- libpq DSNs ----------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("text", "kept"),
    [
        ("host=db password='my pa ss;w&rd' user=x", ["host=db", "user=x"]),
        ("host=db password='it\\'s; a&b c' user=x dbname=orders", ["host=db", "user=x", "dbname=orders"]),
        ('host=db password="sp ace;d" port=5432', ["host=db", "port=5432"]),
        ("dbname=orders password=plain-pw-1 sslmode=require", ["dbname=orders", "sslmode=require"]),
        ("connection to server failed: host=db user=x password='a b'", ["host=db", "user=x"]),
    ],
)
def test_libpq_key_value_dsns(text, kept):
    out = R.text(text)
    assert all(k in out for k in kept)
    for secret in ("my pa ss", "w&rd", "it\\'s", "a&b c", "sp ace", "plain-pw-1", "'a b'"):
        assert secret not in out


# --- ANSI escape codes (IPython's coloured tracebacks) ---------------------------------------------

@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("\x1b[0;31mpassword\x1b[0m=\x1b[1mhunter22\x1b[0m rest", "hunter22"),
        ("dsn \x1b[38;5;241m=\x1b[39m \x1b[38;5;124m\"host=db password=\x1b[0m"
         "\x1b[38;5;124m'my pa ss;w&rd'\x1b[39m", "my pa ss"),
        ("postgresql://u:\x1b[31mpw-long-1\x1b[0m@h/db", "pw-long-1"),
        ("\x1b[1;32mapi_key\x1b[0m \x1b[38;5;241m=\x1b[39m \x1b[38;5;124m'sk-abcdef123456'\x1b[39m",
         "sk-abcdef123456"),
        ("AKIAIOSFOD\x1b[0mNN7EXAMPLE", "NN7EXAMPLE"),
        ("Authorization: \x1b[33mBearer\x1b[0m abcdef0123456789", "abcdef0123456789"),
    ],
)
def test_patterns_match_through_ansi_codes_which_are_kept(text, secret):
    out = R.text(text)
    assert secret not in out and MASK in out
    assert out.count("\x1b") == text.count("\x1b")  # every colour code survives: colours stay balanced
    assert R.text(out) == out


# --- values under secret-named keys ---------------------------------------------------------------

def test_every_leaf_under_a_secret_named_key_is_masked():
    obj = {"tokens": ["abc123", "def456", 789], "api_keys": {"a": "x", "b": ["y", {"c": "z"}], "n": None},
           "credentials": [{"user": "u", "pass": "p"}], "password": True, "namespace": "prod",
           "pods": [{"name": "api-1", "token": "t0k3n-value"}]}
    out = R.value(obj)
    assert out["tokens"] == [MASK, MASK, MASK]
    assert out["api_keys"] == {"a": MASK, "b": [MASK, {"c": MASK}], "n": None}
    assert out["credentials"] == [{"user": MASK, "pass": MASK}]
    assert out["password"] is True and out["namespace"] == "prod"
    assert out["pods"] == [{"name": "api-1", "token": MASK}]
    assert R.value({"kind": "Secret", "data": {"a": b"raw"}, "private_key": 12.5}) == {
        "kind": "Secret", "data": {"a": MASK}, "private_key": MASK}


def test_lists_and_dicts_under_secret_named_keys_in_text():
    out = R.text("{'tokens': ['abc123', 'def456'], 'api_keys': {'a': 'xyz987'}, 'names': ['keep']}")
    assert "abc123" not in out and "def456" not in out and "xyz987" not in out
    assert "'names': ['keep']" in out and "'a':" in out


# --- DataFrames -------------------------------------------------------------------------------------

PANDAS_TEXT = (
    "    user  password   port                note\n"
    "0  alice  hunter22   5432                   x\n"
    "1    bob   s3 cr3t  15432  a longer note here\n"
)
PANDAS_HTML = (
    '<table border="1" class="dataframe">\n  <thead>\n    <tr style="text-align: right;">\n      <th></th>\n'
    "      <th>user</th>\n      <th>password</th>\n      <th>port</th>\n    </tr>\n  </thead>\n  <tbody>\n"
    "    <tr>\n      <th>0</th>\n      <td>alice</td>\n      <td>hunter22</td>\n      <td>5432</td>\n"
    "    </tr>\n    <tr>\n      <th>1</th>\n      <td>bob</td>\n      <td>s3 cr3t</td>\n"
    "      <td>15432</td>\n    </tr>\n"
    "  </tbody>\n</table>"
)


def _kept(out, *words):
    return all(w in out for w in words)


def test_dataframe_text_repr_masks_secret_columns_only():
    out = R.text(PANDAS_TEXT)
    assert "hunter22" not in out and "s3 cr3t" not in out and out.count(MASK) == 2
    assert _kept(out, "alice", "bob", "5432", "15432", "a longer note here", "password", "0  alice")


def test_dataframe_html_masks_secret_columns_only():
    out = R.text(PANDAS_HTML)
    assert "hunter22" not in out and "s3 cr3t" not in out and out.count(MASK) == 2
    assert _kept(out, "<td>alice</td>", "<td>5432</td>", "<th>password</th>", "<th>1</th>")
    assert out.count("<td>") == PANDAS_HTML.count("<td>")


@pytest.mark.parametrize("column", ["password", "api_key", "client_secret", "token", "Authorization"])
def test_real_pandas_reprs(column):
    pd = pytest.importorskip("pandas")
    df = pd.DataFrame({"user": ["alice", "bob"], column: ["hunter22", "s3 cr3t"], "port": [5432, 15432],
                       "note": ["x", "a longer note here"]})
    for text in (str(df), df.to_string(index=False), str(df.set_index("user")), df.to_html()):
        out = R.text(text)
        assert "hunter22" not in out and "s3 cr3t" not in out, text
        assert _kept(out, "alice", "bob", "15432", "a longer note here", column), text


def test_wide_dataframe_blocks_and_other_tables():
    pd = pytest.importorskip("pandas")
    df = pd.DataFrame({f"col{i}": ["v" * 12] * 2 for i in range(12)})
    df["api_key"] = ["k1-secret", "k2-secret"]
    out = R.text(str(df))
    assert "k1-secret" not in out and "k2-secret" not in out and "vvvvvvvvvvvv" in out
    psql = " user  | password \n-------+----------\n alice | hunter22\n bob   | s3 cr3t\n(2 rows)\n"
    out = R.text(psql)
    assert "hunter22" not in out and "s3 cr3t" not in out and _kept(out, "alice", "(2 rows)")
    markdown = "| user | token |\n|---|---|\n| alice | tok-9f8e7d |\n"
    assert "tok-9f8e7d" not in R.text(markdown) and "alice" in R.text(markdown)


def test_tables_without_secret_columns_are_kept():
    text = "NAME            TYPE     DATA   AGE\napp-tls         Opaque   2      5d\n"
    assert R.text(text) == text
    text = "    user  port\n0  alice  5432\n"
    assert R.text(text) == text
    prose = "The password policy changed\nPlease rotate all keys before Friday\n"
    assert R.text(prose) == prose


# --- HTML ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("&quot;password&quot;: &quot;hunter22&quot;", "hunter22"),
        ("{&#x27;api_key&#x27;: &#x27;abcdefgh42&#x27;}", "abcdefgh42"),
        ("{&#39;client_secret&#39;: &#39;zz-top-zz&#39;}", "zz-top-zz"),
        ("postgresql://u:p&amp;ss-w0rd@db/x", "p&amp;ss"),
        ("value my-known-secret-value in &lt;b&gt;", "my-known-secret-value"),
        ('<span class="n">password</span><span class="o">=</span>'
         '<span class="s2">&quot;hunter22&quot;</span>', "hunter22"),
        ("<pre>Authorization: token ghp_abcdefghijklmnopqrstuvwxyz0123456789</pre>", "ghp_"),
    ],
)
def test_html_escaped_and_marked_up_secrets(text, secret):
    out = R.text(text)
    assert secret not in out and MASK in out
    assert out.count("<") == text.count("<") and out.count("&") <= text.count("&")  # markup kept


def test_known_value_with_an_ampersand_in_html():
    r = Redactor.from_environment({"ORDERS_DB_PASSWORD": "Tr0ub4dor&3"})
    assert r.text("<td>Tr0ub4dor&amp;3</td>") == f"<td>{MASK}</td>"


def test_svg_is_redacted_and_raster_images_are_not():
    svg = '<svg xmlns="http://www.w3.org/2000/svg"><text>password=hunter22</text></svg>'
    out = R.value({"image/svg+xml": svg, "image/png": "cGFzc3dvcmQ9aHVudGVyMjI=password=hunter22",
                   "image/jpeg": "password=hunter22", "image/gif": "password=hunter22"})
    assert "hunter22" not in out["image/svg+xml"] and "<svg" in out["image/svg+xml"]
    assert all(out[k].endswith("password=hunter22") for k in ("image/png", "image/jpeg", "image/gif"))


# --- private keys ---------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    "label", ["RSA PRIVATE KEY", "EC PRIVATE KEY", "OPENSSH PRIVATE KEY", "ENCRYPTED PRIVATE KEY",
              "PRIVATE KEY", "DSA PRIVATE KEY", "PGP PRIVATE KEY BLOCK"],
)
@pytest.mark.parametrize("truncated", [False, True])
def test_private_key_blocks_whole_or_truncated(label, truncated):
    body = "MIIEowIBAAKCAQEAx4fakeKeyLine1abcdefghij\nQWERTYUIOPasdfghjklzxcvbnm0123456789+/ab\nZZtop99=="
    text = f"before\n-----BEGIN {label}-----\n{body}\n"
    text += "(output truncated)\nafter" if truncated else f"-----END {label}-----\nafter"
    out = R.text(text)
    assert "MIIEow" not in out and "QWERTY" not in out and "ZZtop99" not in out
    assert out.startswith("before\n") and out.endswith("after")
    if truncated:
        assert "(output truncated)" in out


@pytest.mark.parametrize(
    "text",
    [
        "-----BEGIN PGP PRIVATE KEY BLOCK-----\nVersion: GnuPG v2\n\nlQOYBF0abcdefSECRETline\n=ab12\n",
        "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,AB12\n\n"
        "SECRETline0123\n",
        "'-----BEGIN OPENSSH PRIVATE KEY-----\\nb3BlbnNzaC1SECRETline\\nAAAA' end",
        "-----BEGIN RSA PRIVATE KEY-----\nMIIESECRETline...",
        "key = " + B64_KEY + " (client-key-data)",
    ],
)
def test_private_key_variants(text):
    out = R.text(text)
    assert "SECRETline" not in out and "MIIEow" not in out and MASK in out


def test_certificates_and_public_keys_are_kept():
    text = "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIU\n-----END CERTIFICATE-----\n"
    assert R.text(text) == text
    text = "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYI\n-----END PUBLIC KEY-----"
    assert R.text(text) == text


# --- token formats and headers ---------------------------------------------------------------------------

@pytest.mark.parametrize(
    "secret",
    [
        "ghp_" + "A1b2C3d4E5" * 3 + "xyz123", "gho_" + "a" * 36, "ghu_" + "b1" * 18, "ghs_" + "c2" * 18,
        "ghr_" + "d3" * 18, "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz",
        "xoxb-1234567890-0987654321-AbCdEfGhIjKl", "xoxp-12345-67890-abcdef", "xoxa-2-abcdefghij",
        "xoxr-abcdefghij12", "xoxs-abcdefghij12", "xapp-1-A0123-456-abcdef",
        "sk_live_" + "4eC39HqLyjWDarjtT1zdp7dc", "rk_live_" + "abcdefgh1234", "sk_test_" + "abcdefgh1234",
        "glpat-abcdefghij0123456789", "AIzaSyA-abcdefghijklmnopqrstuvwxyz01234",
    ],
)
def test_well_known_token_formats(secret):
    for text in (secret, f"token {secret} used", f"'{secret}'", f"GITHUB={secret}"):
        out = R.text(text)
        assert secret not in out and MASK in out


@pytest.mark.parametrize(
    ("text", "secret", "kept"),
    [
        ("Authorization: token abc123def", "abc123def", "Authorization: token "),
        ("Authorization: whatever-scheme-value", "whatever-scheme-value", "Authorization: "),
        ("Authorization: Basic YWRtaW46cGFzcw==", "YWRtaW46cGFzcw==", "Authorization: Basic "),
        ("Authorization: OAuth 89a229ce1a8dbcf9ff30", "89a229ce1a8dbcf9ff30", "Authorization: OAuth "),
        ("authorization: Digest username=\"x\", response=\"6629fae4\"", "6629fae4", "authorization: Digest "),
        ("Cookie: session=abc; theme=dark", "session=abc", "Cookie: "),
        ("Set-Cookie: id=a3fWa; Path=/; HttpOnly\nServer: nginx", "a3fWa", "\nServer: nginx"),
        ("X-Api-Key: k-12345678\nAccept: */*", "k-12345678", "\nAccept: */*"),
        ("{'Authorization': 'token abc', 'Host': 'api'}", "abc'", "'Host': 'api'"),
        ('["Authorization: Bearer eyJabc.def", "Accept: json"]', "eyJabc", '"Accept: json"'),
        ("b'GET / HTTP/1.1\\r\\nCookie: sid=s3cr3t\\r\\nHost: x\\r\\n'", "s3cr3t", "\\r\\nHost: x"),
        ("run --token abcdef123 --verbose", "abcdef123", "--verbose"),
    ],
)
def test_headers_and_flags(text, secret, kept):
    out = R.text(text)
    assert secret not in out and MASK in out and kept in out


@pytest.mark.parametrize("text", [
    "curl -H 'Authorization: OAuth $STATUSPAGE_API_KEY' https://api.statuspage.io/v1/pages/p/incidents",
    "curl -H 'Authorization: Bearer ${TOKEN}' https://example.test",
    "Authorization: token <your-token>",
])
def test_a_header_whose_value_is_a_placeholder_is_kept(text):
    """A command shown for a person to run names the variable that holds the key: nothing to mask."""
    assert R.text(text) == text


# --- a secret split between a cell's stream outputs ---------------------------------------------------------

def _stream(name, text):
    return {"output_type": "stream", "name": name, "text": text}


def test_outputs_join_each_stream_before_redacting():
    outputs = [_stream("stdout", "connecting with pass"), _stream("stderr", "warning: slow\n"),
               _stream("stdout", "word=hunter22 to db\n"),
               _stream("stdout", ["key AKIAIOSFOD", "NN7EXAMPLE\n"]),
               {"output_type": "display_data", "data": {"text/plain": "api_key=abcdef12345"}, "metadata": {}}]
    out = R.outputs(outputs)
    stdout = "".join("".join(o["text"]) for o in out if o.get("name") == "stdout")
    assert "hunter22" not in stdout and "AKIAIOSFOD" not in stdout and "NN7EXAMPLE" not in stdout
    assert stdout == R.text("connecting with password=hunter22 to db\nkey AKIAIOSFODNN7EXAMPLE\n")
    assert out[1] == outputs[1] and isinstance(out[3]["text"], list)
    assert out[4]["data"]["text/plain"] == f"api_key={MASK}"
    assert R.outputs(out) == out  # idempotent


def test_value_uses_outputs_for_code_cells():
    nb = {"cells": [{"cell_type": "code", "source": "print(...)", "metadata": {}, "outputs": [
        _stream("stdout", "token: ghp_abcdefgh"), _stream("stderr", "\n"),
        _stream("stdout", "ijklmnop12345678\n")]}]}
    out = R.value(nb)
    text = "".join(o["text"] for o in out["cells"][0]["outputs"] if o["name"] == "stdout")
    assert "ijklmnop" not in text and MASK in text


def test_pieces_join_to_the_redacted_whole():
    pieces = ["postgresql://u:p4ss", "-w0rd@db/x password=", "hunter22 and AKIAIOSFODNN7", "EXAMPLE"]
    out = R.pieces(pieces)
    assert len(out) == len(pieces) and "".join(out) == R.text("".join(pieces))
    assert "p4ss" not in "".join(out) and "hunter22" not in "".join(out)


# --- module functions --------------------------------------------------------------------------------------

def test_redact_text_uses_the_environment(monkeypatch):
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("PAYMENTS_API_TOKEN", "s3cr3t-from-the-env-9f8e")
    text = "NoCredentialsError: Unable to locate credentials; testing with s3cr3t-from-the-env-9f8e"
    assert redact_text(text) == f"NoCredentialsError: Unable to locate credentials; testing with {MASK}"


def test_redact_with_list_parameters():
    out = redact({"note": "tokens are t-1234567890 and t-0987654321"},
                 extra={"tokens": ["t-1234567890", "t-0987654321"]})
    assert out == {"note": f"tokens are {MASK} and {MASK}"}


@pytest.mark.parametrize("text", [PANDAS_TEXT, PANDAS_HTML, *SECRET_TEXTS, *HARMLESS])
def test_redacting_twice_changes_nothing(text):
    once = R.text(text)
    assert R.text(once) == once


def test_multiline_strings_stored_as_lists_of_lines_are_read_whole():
    lines = PANDAS_TEXT.splitlines(keepends=True)
    nb = {"cells": [{"cell_type": "code", "source": ["conn = connect(\n", "    password='hunter2'\n", ")"],
                     "outputs": [{"output_type": "execute_result", "data": {"text/plain": lines}}]}]}
    cell = R.value(nb)["cells"][0]
    table = cell["outputs"][0]["data"]["text/plain"]
    assert isinstance(table, list) and len(table) == len(lines)
    assert "".join(table) == R.text(PANDAS_TEXT) and "hunter22" not in "".join(table)
    assert cell["source"] == ["conn = connect(\n", f"    password='{MASK}'\n", ")"]
    assert R.value(["tokens", "are", "names"]) == ["tokens", "are", "names"]
