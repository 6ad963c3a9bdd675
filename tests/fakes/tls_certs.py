"""Test PKI made at test time with the openssl CLI: a CA, and server
certificates signed by it (valid, expired, for another host), plus a
self-signed one and a client certificate for mTLS."""
import os
import subprocess


def _run(*args, cwd):
    subprocess.run(args, cwd=cwd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


class TestPKI:
    def __init__(self, directory):
        self.dir = directory
        os.makedirs(directory, exist_ok=True)
        self.ca_cert = self.path("ca.pem")
        self.ca_key = self.path("ca.key")
        _run("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", self.ca_key,
             "-out", self.ca_cert, "-days", "2", "-subj", "/CN=outq test CA", cwd=directory)

    def path(self, name):
        return os.path.join(self.dir, name)

    def issue(self, name, san="IP:127.0.0.1,DNS:localhost", days=2, client=False):
        """Returns (cert, key) signed by the test CA. days < 0 gives an expired certificate."""
        key, csr, cert, ext = (self.path(name + s) for s in (".key", ".csr", ".pem", ".ext"))
        _run("openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", csr,
             "-subj", "/CN=" + name, cwd=self.dir)
        with open(ext, "w") as f:
            f.write("subjectAltName=%s\n" % san)
            if client:
                f.write("extendedKeyUsage=clientAuth\n")
        _run("openssl", "x509", "-req", "-in", csr, "-CA", self.ca_cert, "-CAkey", self.ca_key,
             "-CAcreateserial", "-out", cert, "-days", str(days), "-extfile", ext, cwd=self.dir)
        return cert, key

    def self_signed(self, name, san="IP:127.0.0.1,DNS:localhost"):
        key, cert = self.path(name + ".key"), self.path(name + ".pem")
        _run("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert,
             "-days", "2", "-subj", "/CN=" + name, "-addext", "subjectAltName=" + san, cwd=self.dir)
        return cert, key
