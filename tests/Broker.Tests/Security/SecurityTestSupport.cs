using System.Globalization;
using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Broker.Hosting;
using Broker.Stomp;
using Broker.Tests.Infrastructure;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;

namespace Broker.Tests.Security;

/// <summary>JWTs minted the way an identity provider would, with the library the broker validates them with.</summary>
public static class Tokens
{
    public const string Issuer = "https://issuer.test";
    public const string Audience = "stomp-broker";

    /// <summary>The HMAC key the jwt brokers of these tests trust (256 bits, as HS256 requires).</summary>
    public static readonly byte[] HmacKey = RandomNumberGenerator.GetBytes(32);

    /// <summary>Settings for a broker with the jwt provider on, trusting <see cref="HmacKey"/>, issuer and audience checked.</summary>
    public static string[] HmacBroker(params string[] extra) =>
    [
        "Broker:Security:Jwt:Enabled=true",
        $"Broker:Security:Jwt:SymmetricKeys:0={Convert.ToBase64String(HmacKey)}",
        $"Broker:Security:Jwt:Issuer={Issuer}",
        $"Broker:Security:Jwt:Audience={Audience}",
        .. extra,
    ];

    /// <summary>A signed JWT for <paramref name="subject"/>; HMAC with <see cref="HmacKey"/> unless a key is given.</summary>
    public static string Create(
        string subject,
        TimeSpan? lifetime = null,
        string[]? roles = null,
        SigningCredentials? signing = null,
        string issuer = Issuer,
        string audience = Audience,
        DateTime? expires = null)
    {
        var now = DateTime.UtcNow;
        var expiry = expires ?? now + (lifetime ?? TimeSpan.FromMinutes(5));
        // Issued a while ago, so a token that has already expired is still well formed (nbf < exp).
        var issued = (expiry < now ? expiry : now) - TimeSpan.FromMinutes(10);
        var claims = new Dictionary<string, object> { ["sub"] = subject };
        if (roles is { Length: > 0 })
        {
            claims["role"] = roles;
        }

        return new JsonWebTokenHandler().CreateToken(new SecurityTokenDescriptor
        {
            Issuer = issuer,
            Audience = audience,
            Claims = claims,
            IssuedAt = issued,
            NotBefore = issued,
            Expires = expiry,
            SigningCredentials = signing ?? new SigningCredentials(new SymmetricSecurityKey(HmacKey), SecurityAlgorithms.HmacSha256),
        });
    }
}

/// <summary>Password hashes in the broker's format, cheap enough to verify on every CONNECT of a test.</summary>
public static class Passwords
{
    /// <summary>
    /// A <c>pbkdf2-sha256</c> hash with 1,000 iterations: the format records the count, so the broker verifies it as it
    /// does the 210,000-iteration hashes of <c>hash-password</c>, about 200 times faster.
    /// </summary>
    public static string FastHash(string password)
    {
        var salt = RandomNumberGenerator.GetBytes(16);
        var hash = Rfc2898DeriveBytes.Pbkdf2(password, salt, 1000, HashAlgorithmName.SHA256, 32);
        return $"pbkdf2-sha256$1000${Convert.ToBase64String(salt)}${Convert.ToBase64String(hash)}";
    }

    /// <summary>Settings for a user of the users provider.</summary>
    public static string[] User(string name, string password, params string[] roles) =>
    [
        $"Broker:Security:Users:{name}:PasswordHash={FastHash(password)}",
        .. roles.Select((role, i) => $"Broker:Security:Users:{name}:Roles:{i.ToString(CultureInfo.InvariantCulture)}={role}"),
    ];
}

/// <summary>A self-signed server certificate for 127.0.0.1 and localhost, as PEM (certificate + key) and PKCS#12 files.</summary>
public sealed class TestCertificate : IDisposable
{
    public const string PfxPassword = "pfx-secret";

    private TestCertificate(string folder, X509Certificate2 certificate)
    {
        Folder = folder;
        Certificate = certificate;
    }

    public string Folder { get; }

    public X509Certificate2 Certificate { get; }

    public string CertificatePath => Path.Combine(Folder, "broker.crt.pem");

    public string KeyPath => Path.Combine(Folder, "broker.key.pem");

    public string PfxPath => Path.Combine(Folder, "broker.pfx");

    public static TestCertificate Create()
    {
        using var key = RSA.Create(2048);
        var request = new CertificateRequest("CN=localhost", key, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        var names = new SubjectAlternativeNameBuilder();
        names.AddIpAddress(IPAddress.Loopback);
        names.AddDnsName("localhost");
        request.CertificateExtensions.Add(names.Build());
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new System.Security.Cryptography.Oid("1.3.6.1.5.5.7.3.1")], critical: false));
        using var created = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(30));

        var folder = Directory.CreateTempSubdirectory("stompbroker-tls-").FullName;
        var certificate = new TestCertificate(folder, X509CertificateLoader.LoadCertificate(created.RawData));
        File.WriteAllText(certificate.CertificatePath, created.ExportCertificatePem());
        File.WriteAllText(certificate.KeyPath, key.ExportPkcs8PrivateKeyPem());
        File.WriteAllBytes(certificate.PfxPath, created.Export(X509ContentType.Pkcs12, PfxPassword));
        return certificate;
    }

    /// <summary>Whether the certificate a server presented is this one (the callback for clients that must trust it).</summary>
    public bool IsThis(X509Certificate? presented) => presented is not null && presented.GetCertHashString() == Certificate.GetCertHashString();

    public void Dispose()
    {
        Certificate.Dispose();
        try
        {
            Directory.Delete(Folder, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}

/// <summary>Broker apps that are only built (to check their options), or that must fail to start; always disposed.</summary>
public static class BrokerApp
{
    /// <summary>Builds (does not start) a broker app with these settings, as <see cref="BrokerServer"/> would.</summary>
    public static WebApplication Build(params string[] settings)
    {
        string[] args =
        [
            $"--Broker:Tcp:Port={BrokerServer.FreePort()}",
            $"--Broker:WebSocket:Port={BrokerServer.FreePort()}",
            .. settings.Select(s => "--" + s),
        ];
        var builder = WebApplication.CreateSlimBuilder(args);
        builder.Logging.ClearProviders();
        builder.AddStompBroker();
        return builder.Build();
    }

    /// <summary>
    /// Starts a broker as Program.cs does (build, map, start) with settings that must stop it, and returns the failure.
    /// Invalid options and certificates fail while the app is built (Kestrel's endpoints are configured then), before
    /// anything listens.
    /// </summary>
    public static async Task<Exception> StartRefusedAsync(params string[] settings)
    {
        WebApplication? app = null;
        var failure = await Record.ExceptionAsync(async () =>
        {
            app = Build(settings);
            app.MapStompBroker();
            await app.StartAsync();
        });
        if (app is not null)
        {
            if (failure is null)
            {
                await app.StopAsync();
            }

            await app.DisposeAsync();
        }

        Assert.True(failure is not null, "the broker started, but its configuration should have been refused");
        return failure!;
    }
}

/// <summary>CONNECT with chosen credentials, and the assertions every refusal shares.</summary>
public static class SecureClient
{
    /// <summary>Opens a connection and sends CONNECT with exactly these headers (plus accept-version and heart-beat).</summary>
    public static async Task<StompTestClient> SendConnectAsync(this BrokerServer server, Transport transport, params (string Name, string Value)[] headers)
    {
        var client = await server.OpenAsync(transport);
        await client.SendFrameAsync(StompCommand.Connect, [("accept-version", "1.2"), ("heart-beat", "0,0"), .. headers]);
        return client;
    }

    /// <summary>CONNECT with these headers, which must be answered with CONNECTED.</summary>
    public static async Task<StompTestClient> ConnectWithAsync(this BrokerServer server, Transport transport, params (string Name, string Value)[] headers)
    {
        var client = await server.SendConnectAsync(transport, headers);
        var connected = await client.ReceiveAsync();
        Assert.True(connected.Command == StompCommand.Connected, $"expected CONNECTED, got {connected}");
        return client;
    }

    /// <summary>CONNECT with these headers, which must be refused: ERROR with this message, then the connection closes.</summary>
    public static async Task<ReceivedFrame> ConnectRefusedAsync(this BrokerServer server, Transport transport, string message, params (string Name, string Value)[] headers)
    {
        await using var client = await server.SendConnectAsync(transport, headers);
        var error = await client.ExpectErrorThenCloseAsync();
        Assert.Equal(message, error["message"]);
        return error;
    }

    /// <summary>Login and passcode headers.</summary>
    public static (string, string)[] Login(string login, string passcode) => [("login", login), ("passcode", passcode)];
}

/// <summary>
/// The system clock with timers that fire early, as real timers may: they count whole milliseconds of a coarse clock,
/// and were measured firing before the instant they were set for in almost half of the tries.
/// </summary>
public sealed class EarlyTimers(TimeSpan early) : TimeProvider
{
    public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period) =>
        new EarlyTimer(System.CreateTimer(callback, state, Shift(dueTime), period), this);

    private TimeSpan Shift(TimeSpan due) => due == Timeout.InfiniteTimeSpan ? due : due > early ? due - early : TimeSpan.Zero;

    private sealed class EarlyTimer(ITimer inner, EarlyTimers owner) : ITimer
    {
        public bool Change(TimeSpan dueTime, TimeSpan period) => inner.Change(owner.Shift(dueTime), period);

        public void Dispose() => inner.Dispose();

        public ValueTask DisposeAsync() => inner.DisposeAsync();
    }
}
