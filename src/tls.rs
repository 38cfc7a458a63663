//! TLS from the `tls_*` flags: rustls with the ring provider. A CA file
//! turns on client certificates: every client must present one it signed.

use std::sync::Arc;

fn read(flag: &str, path: &str) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("ERROR: flag '{flag}': cannot read {path}: {e}"))
}

fn certs(
    flag: &str,
    path: &str,
) -> Result<Vec<rustls::pki_types::CertificateDer<'static>>, String> {
    let pem = read(flag, path)?;
    let certs: Vec<_> = rustls_pemfile::certs(&mut pem.as_slice())
        .collect::<Result<_, _>>()
        .map_err(|e| format!("ERROR: flag '{flag}': {path}: {e}"))?;
    if certs.is_empty() {
        return Err(format!("ERROR: flag '{flag}': no certificate in {path}"));
    }
    Ok(certs)
}

pub fn server_config(
    cert_file: &str,
    key_file: &str,
    ca_file: &str,
) -> Result<Arc<rustls::ServerConfig>, String> {
    if cert_file.is_empty() || key_file.is_empty() {
        return Err("ERROR: flag 'tls' needs --tls_cert_file and --tls_key_file".into());
    }
    let chain = certs("tls_cert_file", cert_file)?;
    let pem = read("tls_key_file", key_file)?;
    let key = rustls_pemfile::private_key(&mut pem.as_slice())
        .map_err(|e| format!("ERROR: flag 'tls_key_file': {key_file}: {e}"))?
        .ok_or_else(|| format!("ERROR: flag 'tls_key_file': no private key in {key_file}"))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("ERROR: flag 'tls': {e}"))?;
    let builder = if ca_file.is_empty() {
        builder.with_no_client_auth()
    } else {
        let mut roots = rustls::RootCertStore::empty();
        for c in certs("tls_ca_cert_file", ca_file)? {
            roots
                .add(c)
                .map_err(|e| format!("ERROR: flag 'tls_ca_cert_file': {ca_file}: {e}"))?;
        }
        let verifier =
            rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|e| format!("ERROR: flag 'tls_ca_cert_file': {e}"))?;
        builder.with_client_cert_verifier(verifier)
    };
    let config = builder
        .with_single_cert(chain, key)
        .map_err(|e| format!("ERROR: flag 'tls_key_file': {e}"))?;
    Ok(Arc::new(config))
}
