#!/usr/bin/env bash
# Make what the Secrets db4-tls and db4-tokens hold, and secrets.yaml to apply them:
#   deploy/gen-secrets.sh OUTDIR [NAMESPACE]      (NAMESPACE: db4, the prod overlay's)
# OUTDIR gets ca.crt/ca.key (a CA of your own), tls.crt/tls.key (one certificate for nodes and
# routers: server and client use, valid for the nodes' and routers' Service names in NAMESPACE
# and for 127.0.0.1/localhost), internal (role node token) and admin (admin token). A file
# that exists is kept: delete tls.crt to issue a new certificate from the same CA, or a token
# file to make a new token, then run again. Keep OUTDIR out of version control.
set -euo pipefail
out=${1:?usage: deploy/gen-secrets.sh OUTDIR [NAMESPACE]}
ns=${2:-db4}
days_ca=3650
days_cert=${DB4_CERT_DAYS:-365}
mkdir -p "$out"
umask 077
cd "$out"

if [ ! -s ca.key ] || [ ! -s ca.crt ]; then
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out ca.key
  openssl req -x509 -new -key ca.key -sha256 -days "$days_ca" -subj "/CN=db4 CA ($ns)" \
    -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign \
    -out ca.crt
  echo "gen-secrets: new CA $out/ca.crt" >&2
fi

if [ ! -s tls.key ] || [ ! -s tls.crt ]; then
  names="DNS:*.db4-node.$ns.svc,DNS:*.db4-node.$ns.svc.cluster.local"
  names+=",DNS:db4-router,DNS:db4-router.$ns,DNS:db4-router.$ns.svc"
  names+=",DNS:db4-router.$ns.svc.cluster.local,DNS:localhost,IP:127.0.0.1,IP:::1"
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out tls.key
  openssl req -new -key tls.key -subj "/CN=db4.$ns" -out tls.csr
  printf '%s\n' "subjectAltName=$names" "basicConstraints=critical,CA:FALSE" \
    "keyUsage=critical,digitalSignature,keyEncipherment" \
    "extendedKeyUsage=serverAuth,clientAuth" > tls.ext
  openssl x509 -req -in tls.csr -CA ca.crt -CAkey ca.key -CAcreateserial -sha256 \
    -days "$days_cert" -extfile tls.ext -out tls.crt 2>/dev/null
  rm -f tls.csr tls.ext
  echo "gen-secrets: new certificate $out/tls.crt for $names" >&2
fi

# db4_<12 hex digits of id>_<43 characters: 32 random bytes, URL-safe base64 unpadded>
token() { printf 'db4_%s_%s\n' "$(openssl rand -hex 6)" \
  "$(openssl rand 32 | base64 | tr '+/' '-_' | tr -d '=\n')"; }
for name in internal admin; do
  if [ ! -s "$name" ]; then token > "$name"; echo "gen-secrets: new $name token" >&2; fi
done

if command -v kubectl >/dev/null; then
  {
    kubectl create secret generic db4-tls --namespace "$ns" --dry-run=client -o yaml \
      --from-file=ca.crt --from-file=tls.crt --from-file=tls.key
    echo ---
    kubectl create secret generic db4-tokens --namespace "$ns" --dry-run=client -o yaml \
      --from-file=internal --from-file=admin
  } > secrets.yaml
  echo "gen-secrets: kubectl apply -f $out/secrets.yaml" >&2
fi
