using System.Security.Cryptography.X509Certificates;
using Broker.Configuration;

namespace Broker.Security;

/// <summary>Loads a listener's certificate from PEM files, a PKCS#12 file, or a certificate store.</summary>
internal static class TlsCertificates
{
    public static X509Certificate2 Load(TlsOptions tls, string settingName)
    {
        if (tls.Thumbprint is { } thumbprint)
        {
            using var store = new X509Store(tls.StoreName ?? "My", tls.StoreLocation);
            store.Open(OpenFlags.ReadOnly);
            var found = store.Certificates.Find(X509FindType.FindByThumbprint, thumbprint, validOnly: false);
            return found.Count > 0
                ? found[0]
                : throw new InvalidOperationException($"{settingName}: no certificate with thumbprint {thumbprint} in {tls.StoreLocation}/{tls.StoreName ?? "My"}.");
        }

        var path = tls.CertificatePath ?? throw new InvalidOperationException($"{settingName}: set CertificatePath (and KeyPath for PEM) or Thumbprint.");
        if (!File.Exists(path))
        {
            throw new InvalidOperationException($"{settingName}:CertificatePath '{path}' does not exist.");
        }

        if (path.EndsWith(".pfx", StringComparison.OrdinalIgnoreCase) || path.EndsWith(".p12", StringComparison.OrdinalIgnoreCase))
        {
            return X509CertificateLoader.LoadPkcs12FromFile(path, tls.Password);
        }

        var pem = tls.Password is null
            ? X509Certificate2.CreateFromPemFile(path, tls.KeyPath)
            : X509Certificate2.CreateFromEncryptedPemFile(path, tls.Password, tls.KeyPath);
        // Ephemeral PEM keys do not work with SslStream on every platform: round-trip through PKCS#12.
        return X509CertificateLoader.LoadPkcs12(pem.Export(X509ContentType.Pkcs12), null);
    }
}
