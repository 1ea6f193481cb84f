using System.Net;
using System.Net.WebSockets;
using System.Security.Cryptography;
using Broker.Tests.Infrastructure;
using Microsoft.IdentityModel.Tokens;

namespace Broker.Tests.Security;

/// <summary>A broker that accepts HMAC-signed JWTs only (anonymous off).</summary>
public sealed class JwtBrokerFixture : IAsyncLifetime
{
    public BrokerServer Server { get; private set; } = null!;

    public async Task InitializeAsync() => Server = await BrokerServer.StartAsync(Tokens.HmacBroker("Broker:Security:Anonymous=false"));

    public async Task DisposeAsync() => await Server.DisposeAsync();
}

/// <summary>The jwt provider: where a token may come from, what makes one invalid, and the key types.</summary>
public sealed class JwtProviderTests(JwtBrokerFixture broker) : IClassFixture<JwtBrokerFixture>
{
    private const string InvalidToken = "access refused: invalid token";

    private BrokerServer Server => broker.Server;

    [Theory]
    [InlineData(Transport.Tcp)]
    [InlineData(Transport.WebSocket)]
    public async Task A_token_as_the_connect_passcode_gets_in(Transport transport)
    {
        await using var client = await Server.ConnectWithAsync(transport, SecureClient.Login("alice", Tokens.Create("alice")));
        await client.AssertAliveAsync();
        // The login is optional: the token says who it is.
        await using var noLogin = await Server.ConnectWithAsync(transport, ("passcode", Tokens.Create("alice")));
        await noLogin.AssertAliveAsync();
    }

    [Theory]
    [InlineData(Transport.Tcp, "Authorization")]
    [InlineData(Transport.Tcp, "authorization")]
    [InlineData(Transport.WebSocket, "Authorization")]
    public async Task A_token_in_an_authorization_bearer_connect_header_gets_in(Transport transport, string header)
    {
        await using var client = await Server.ConnectWithAsync(transport, (header, "Bearer " + Tokens.Create("alice")));
        await client.AssertAliveAsync();
    }

    [Fact]
    public async Task A_token_in_the_websocket_upgrade_authorization_header_gets_in()
    {
        var token = Tokens.Create("alice");
        await using var client = await StompTestClient.ConnectWebSocketAsync(
            Server.WebSocketUri, configure: o => o.SetRequestHeader("Authorization", "Bearer " + token));
        await client.SendFrameAsync(Broker.Stomp.StompCommand.Connect, [("accept-version", "1.2"), ("host", "/")]);
        Assert.Equal(Broker.Stomp.StompCommand.Connected, (await client.ReceiveAsync()).Command);
        await client.AssertAliveAsync();
    }

    [Fact]
    public async Task A_token_in_the_access_token_query_parameter_gets_in()
    {
        var uri = new Uri(Server.WebSocketUri + "?access_token=" + Uri.EscapeDataString(Tokens.Create("alice")));
        await using var client = await StompTestClient.ConnectWebSocketAsync(uri);
        await client.SendFrameAsync(Broker.Stomp.StompCommand.Connect, [("accept-version", "1.2"), ("host", "/")]);
        Assert.Equal(Broker.Stomp.StompCommand.Connected, (await client.ReceiveAsync()).Command);
        await client.AssertAliveAsync();
    }

    [Fact]
    public async Task An_invalid_token_on_the_websocket_upgrade_is_refused_at_connect()
    {
        var uri = new Uri(Server.WebSocketUri + "?access_token=" + Uri.EscapeDataString(Tokens.Create("alice", issuer: "https://evil.test")));
        await using var client = await StompTestClient.ConnectWebSocketAsync(uri);
        await client.SendFrameAsync(Broker.Stomp.StompCommand.Connect, [("accept-version", "1.2"), ("host", "/")]);
        var error = await client.ExpectErrorThenCloseAsync();
        Assert.Equal(InvalidToken, error["message"]);
    }

    // Built in the test, not at discovery: the HMAC key is made per process.
    private static (string Token, string Message) BadToken(string kind) => kind switch
    {
        "wrong issuer" => (Tokens.Create("alice", issuer: "https://evil.test"), InvalidToken),
        "wrong audience" => (Tokens.Create("alice", audience: "another-service"), InvalidToken),
        "wrong signature" => (Tokens.Create("alice", signing: new SigningCredentials(new SymmetricSecurityKey(RandomNumberGenerator.GetBytes(32)), SecurityAlgorithms.HmacSha256)), InvalidToken),
        "tampered payload" => (Tamper(Tokens.Create("alice")), InvalidToken),
        "expired" => (Tokens.Create("alice", expires: DateTime.UtcNow.AddMinutes(-5)), "token expired"),
        "not yet valid" => (NotYetValid(), InvalidToken),
        "not a token" => ("not.a.token", InvalidToken),
        _ => throw new ArgumentOutOfRangeException(nameof(kind)),
    };

    [Theory]
    [InlineData("wrong issuer")]
    [InlineData("wrong audience")]
    [InlineData("wrong signature")]
    [InlineData("tampered payload")]
    [InlineData("expired")]
    [InlineData("not yet valid")]
    [InlineData("not a token")]
    public async Task A_bad_token_as_passcode_is_refused_and_others_are_unaffected(string kind)
    {
        var (token, message) = BadToken(kind);
        await using var alice = await Server.ConnectWithAsync(Transport.Tcp, ("passcode", Tokens.Create("alice")));
        var queue = Unique.Queue("jwt");
        await alice.SubscribeAsync(queue, "a");

        var error = await Server.ConnectRefusedAsync(Transport.Tcp, message, ("login", "mallory"), ("passcode", token));
        Assert.False(error.BodyText.Contains(token, StringComparison.Ordinal), $"{kind}: the ERROR echoes the token");

        await alice.SendAsync(queue, kind);
        Assert.Equal(kind, (await alice.ReceiveMessageAsync()).BodyText);
    }

    [Theory]
    [InlineData("wrong issuer")]
    [InlineData("wrong audience")]
    [InlineData("wrong signature")]
    [InlineData("expired")]
    public async Task A_bad_token_in_the_authorization_header_is_refused(string kind)
    {
        var (token, message) = BadToken(kind);
        var error = await Server.ConnectRefusedAsync(Transport.WebSocket, message, ("Authorization", "Bearer " + token));
        Assert.Contains("Authorization:***", error.BodyText, StringComparison.Ordinal);
        Assert.False(error.BodyText.Contains(token, StringComparison.Ordinal), $"{kind}: the ERROR echoes the token");
    }

    [Fact]
    public async Task A_token_without_a_subject_is_refused()
    {
        // Signed with the right key, but names nobody.
        var token = new Microsoft.IdentityModel.JsonWebTokens.JsonWebTokenHandler().CreateToken(new SecurityTokenDescriptor
        {
            Issuer = Tokens.Issuer,
            Audience = Tokens.Audience,
            Expires = DateTime.UtcNow.AddMinutes(5),
            SigningCredentials = new SigningCredentials(new SymmetricSecurityKey(Tokens.HmacKey), SecurityAlgorithms.HmacSha256),
        });
        await Server.ConnectRefusedAsync(Transport.Tcp, "access refused: the token has no 'sub' claim", ("passcode", token));
    }

    [Fact]
    public async Task Without_a_token_or_credentials_the_connect_is_refused()
    {
        await Server.ConnectRefusedAsync(Transport.Tcp, "access refused: credentials required (login and passcode, or a bearer token)", ("host", "/"));
        // A password that is not a JWT goes nowhere either: no users, no anonymous.
        await Server.ConnectRefusedAsync(Transport.Tcp, "access refused: bad login or passcode", SecureClient.Login("alice", "password"));
    }

    [Fact]
    public async Task A_bearer_token_is_refused_where_the_jwt_provider_is_off()
    {
        await using var server = await BrokerServer.StartAsync();
        await server.ConnectRefusedAsync(Transport.Tcp, "access refused: bearer tokens are not accepted here", ("Authorization", "Bearer " + Tokens.Create("alice")));
    }

    [Fact]
    public async Task Rsa_and_ecdsa_public_keys_verify_their_tokens_from_a_pem_file_or_inline_pem()
    {
        using var rsa = RSA.Create(2048);
        using var ecdsa = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var folder = Directory.CreateTempSubdirectory("stompbroker-jwt-").FullName;
        try
        {
            var rsaFile = Path.Combine(folder, "rsa.pub.pem");
            await File.WriteAllTextAsync(rsaFile, rsa.ExportSubjectPublicKeyInfoPem());
            await using var server = await BrokerServer.StartAsync(
                "Broker:Security:Anonymous=false",
                "Broker:Security:Jwt:Enabled=true",
                $"Broker:Security:Jwt:PublicKeys:0={rsaFile}",
                $"Broker:Security:Jwt:PublicKeys:1={ecdsa.ExportSubjectPublicKeyInfoPem()}",
                $"Broker:Security:Jwt:Issuer={Tokens.Issuer}",
                $"Broker:Security:Jwt:Audience={Tokens.Audience}");

            var rsaToken = Tokens.Create("rita", signing: new SigningCredentials(new RsaSecurityKey(rsa), SecurityAlgorithms.RsaSha256));
            await using var rita = await server.ConnectWithAsync(Transport.Tcp, ("passcode", rsaToken));
            await rita.AssertAliveAsync();

            var psToken = Tokens.Create("rita", signing: new SigningCredentials(new RsaSecurityKey(rsa), SecurityAlgorithms.RsaSsaPssSha256));
            await using var ritaPss = await server.ConnectWithAsync(Transport.WebSocket, ("Authorization", "Bearer " + psToken));
            await ritaPss.AssertAliveAsync();

            var ecToken = Tokens.Create("eve", signing: new SigningCredentials(new ECDsaSecurityKey(ecdsa), SecurityAlgorithms.EcdsaSha256));
            await using var eve = await server.ConnectWithAsync(Transport.WebSocket, ("passcode", ecToken));
            await eve.AssertAliveAsync();

            // Another key pair of the same kinds, and the HMAC key the server does not hold, are refused.
            using var otherRsa = RSA.Create(2048);
            using var otherEc = ECDsa.Create(ECCurve.NamedCurves.nistP256);
            await server.ConnectRefusedAsync(Transport.Tcp, InvalidToken, ("passcode", Tokens.Create("rita", signing: new SigningCredentials(new RsaSecurityKey(otherRsa), SecurityAlgorithms.RsaSha256))));
            await server.ConnectRefusedAsync(Transport.Tcp, InvalidToken, ("passcode", Tokens.Create("eve", signing: new SigningCredentials(new ECDsaSecurityKey(otherEc), SecurityAlgorithms.EcdsaSha256))));
            await server.ConnectRefusedAsync(Transport.Tcp, InvalidToken, ("passcode", Tokens.Create("mallory")));
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    [Fact]
    public async Task Clock_skew_admits_a_token_that_expired_within_it_and_the_connection_lives_until_the_skew_runs_out()
    {
        await using var server = await BrokerServer.StartAsync(Tokens.HmacBroker("Broker:Security:Anonymous=false", "Broker:Security:Jwt:ClockSkew=00:01:00"));
        var recentlyExpired = Tokens.Create("alice", expires: DateTime.UtcNow.AddSeconds(-10));
        await using var client = await server.ConnectWithAsync(Transport.Tcp, ("passcode", recentlyExpired));
        // Accepted at CONNECT, so not dropped as expired straight after: the live check honours the same skew.
        await client.ExpectNothingAsync(500);
        await client.AssertAliveAsync();

        await server.ConnectRefusedAsync(Transport.Tcp, "token expired", ("passcode", Tokens.Create("alice", expires: DateTime.UtcNow.AddMinutes(-2))));
    }

    [Fact]
    public async Task Without_clock_skew_a_token_expired_by_seconds_is_refused()
    {
        await using var server = await BrokerServer.StartAsync(Tokens.HmacBroker("Broker:Security:Anonymous=false", "Broker:Security:Jwt:ClockSkew=00:00:00"));
        await server.ConnectRefusedAsync(Transport.Tcp, "token expired", ("passcode", Tokens.Create("alice", expires: DateTime.UtcNow.AddSeconds(-3))));
        await using var fresh = await server.ConnectWithAsync(Transport.Tcp, ("passcode", Tokens.Create("alice")));
        await fresh.AssertAliveAsync();
    }

    [Fact]
    public async Task A_refused_upgrade_token_does_not_stop_the_websocket_handshake_it_is_judged_at_connect()
    {
        using var socket = new ClientWebSocket();
        socket.Options.AddSubProtocol("v12.stomp");
        socket.Options.CollectHttpResponseDetails = true;
        socket.Options.SetRequestHeader("Authorization", "Bearer garbage");
        await socket.ConnectAsync(Server.WebSocketUri, CancellationToken.None);
        Assert.Equal(HttpStatusCode.SwitchingProtocols, socket.HttpStatusCode);
    }

    // Valid from an hour from now (beyond the 30 s default clock skew).
    private static string NotYetValid() => new Microsoft.IdentityModel.JsonWebTokens.JsonWebTokenHandler().CreateToken(new SecurityTokenDescriptor
    {
        Issuer = Tokens.Issuer,
        Audience = Tokens.Audience,
        Claims = new Dictionary<string, object> { ["sub"] = "alice" },
        NotBefore = DateTime.UtcNow.AddHours(1),
        Expires = DateTime.UtcNow.AddHours(2),
        SigningCredentials = new SigningCredentials(new SymmetricSecurityKey(Tokens.HmacKey), SecurityAlgorithms.HmacSha256),
    });

    // Flips one character of the payload: the signature no longer matches.
    private static string Tamper(string token)
    {
        var parts = token.Split('.');
        var payload = parts[1].ToCharArray();
        payload[5] = payload[5] == 'A' ? 'B' : 'A';
        return $"{parts[0]}.{new string(payload)}.{parts[2]}";
    }
}
