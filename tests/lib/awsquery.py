"""AWS query-API calls (IAM, STS) to an S3-compatible store, signed with
SigV4 by hand (standard library only), for test_s3.py's temporary
credentials: a user policy that allows sts:GetSessionToken, then the
token.  goproxyd's own signing is libcurl's; this is the test's client.

    put_user_policy(endpoint, ak, sk, user, name, policy_json)
    get_session_token(endpoint, ak, sk, seconds) -> (ak, sk, token)
"""

import datetime
import hashlib
import hmac
import re
import urllib.parse
import urllib.request

REGION = "us-east-1"
SIGNED = "content-type;host;x-amz-content-sha256;x-amz-date"
CTYPE = "application/x-www-form-urlencoded; charset=utf-8"


def _hmac(key, msg):
    return hmac.new(key, msg.encode(), hashlib.sha256).digest()


def call(endpoint, ak, sk, service, params, timeout=10):
    """POSTs params to endpoint as a SigV4-signed query-API call; the body."""
    body = urllib.parse.urlencode(params)
    host = urllib.parse.urlsplit(endpoint).netloc
    now = datetime.datetime.now(datetime.timezone.utc)
    amz, day = now.strftime("%Y%m%dT%H%M%SZ"), now.strftime("%Y%m%d")
    payload = hashlib.sha256(body.encode()).hexdigest()
    canonical = "POST\n/\n\ncontent-type:%s\nhost:%s\nx-amz-content-sha256:%s\nx-amz-date:%s\n\n%s\n%s" % (
        CTYPE, host, payload, amz, SIGNED, payload)
    scope = "%s/%s/%s/aws4_request" % (day, REGION, service)
    to_sign = "AWS4-HMAC-SHA256\n%s\n%s\n%s" % (amz, scope, hashlib.sha256(canonical.encode()).hexdigest())
    key = _hmac(_hmac(_hmac(_hmac(("AWS4" + sk).encode(), day), REGION), service), "aws4_request")
    sig = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    req = urllib.request.Request(endpoint + "/", data=body.encode(), method="POST", headers={
        "Content-Type": CTYPE, "X-Amz-Date": amz, "X-Amz-Content-Sha256": payload,
        "Authorization": "AWS4-HMAC-SHA256 Credential=%s/%s, SignedHeaders=%s, Signature=%s" % (
            ak, scope, SIGNED, sig)})
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return r.read().decode()


def put_user_policy(endpoint, ak, sk, user, name, policy_json):
    call(endpoint, ak, sk, "iam", {"Action": "PutUserPolicy", "UserName": user,
                                   "PolicyName": name, "PolicyDocument": policy_json})


def get_session_token(endpoint, ak, sk, seconds=900):
    x = call(endpoint, ak, sk, "sts", {"Action": "GetSessionToken", "Version": "2011-06-15",
                                       "DurationSeconds": str(seconds)})

    def field(tag):
        m = re.search("<%s>([^<]*)</%s>" % (tag, tag), x)
        if m is None:
            raise ValueError("GetSessionToken: no %s in %r" % (tag, x[:300]))
        return m.group(1)
    return field("AccessKeyId"), field("SecretAccessKey"), field("SessionToken")
