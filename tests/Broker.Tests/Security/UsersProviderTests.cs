using System.Diagnostics;
using Broker.Security;
using Broker.Tests.Infrastructure;

namespace Broker.Tests.Security;

/// <summary>A broker with users in configuration and anonymous access off.</summary>
public sealed class UsersBrokerFixture : IAsyncLifetime
{
    public BrokerServer Server { get; private set; } = null!;

    public async Task InitializeAsync() => Server = await BrokerServer.StartAsync(
    [
        "Broker:Security:Anonymous=false",
        .. Passwords.User("alice", "correct horse"),
        .. Passwords.User("bob", "b0b:with colon", "ops"),
    ]);

    public async Task DisposeAsync() => await Server.DisposeAsync();
}

/// <summary>The users provider: PBKDF2 hashes in configuration, and the hash-password command that makes them.</summary>
public sealed class UsersProviderTests(UsersBrokerFixture broker) : IClassFixture<UsersBrokerFixture>
{
    private const string BadCredentials = "access refused: bad login or passcode";

    private BrokerServer Server => broker.Server;

    [Theory]
    [InlineData(Transport.Tcp)]
    [InlineData(Transport.WebSocket)]
    public async Task The_right_password_gets_in(Transport transport)
    {
        await using var alice = await Server.ConnectWithAsync(transport, SecureClient.Login("alice", "correct horse"));
        await alice.AssertAliveAsync();
        // A passcode with a colon survives STOMP header escaping.
        await using var bob = await Server.ConnectWithAsync(transport, SecureClient.Login("bob", "b0b:with colon"));
        await bob.AssertAliveAsync();
    }

    [Theory]
    [InlineData(Transport.Tcp, "alice", "wrong")]
    [InlineData(Transport.Tcp, "alice", "")]
    [InlineData(Transport.Tcp, "alice", "Correct horse")]
    [InlineData(Transport.Tcp, "mallory", "correct horse")]
    [InlineData(Transport.WebSocket, "alice", "wrong")]
    [InlineData(Transport.WebSocket, "mallory", "correct horse")]
    public async Task A_wrong_password_and_an_unknown_user_get_the_same_error_and_others_are_unaffected(Transport transport, string login, string passcode)
    {
        await using var alice = await Server.ConnectWithAsync(Transport.Tcp, SecureClient.Login("alice", "correct horse"));
        var queue = Unique.Queue("users");
        await alice.SubscribeAsync(queue, "a");

        var error = await Server.ConnectRefusedAsync(transport, BadCredentials, SecureClient.Login(login, passcode));
        // The ERROR shows the failing CONNECT with the passcode masked.
        Assert.Contains("passcode:***", error.BodyText, StringComparison.Ordinal);
        if (passcode.Length > 0)
        {
            Assert.DoesNotContain(passcode, error.BodyText, StringComparison.Ordinal);
        }

        await alice.SendAsync(queue, "still here");
        Assert.Equal("still here", (await alice.ReceiveMessageAsync()).BodyText);
    }

    [Fact]
    public async Task A_login_without_a_passcode_is_refused()
    {
        await Server.ConnectRefusedAsync(Transport.Tcp, BadCredentials, ("login", "alice"));
    }

    [Fact]
    public async Task A_configured_users_wrong_password_is_refused_even_where_anonymous_is_allowed()
    {
        // Loopback: anonymous is on by default. It admits unknown logins, never a known user with the wrong password.
        await using var server = await BrokerServer.StartAsync(Passwords.User("alice", "correct horse"));
        await server.ConnectRefusedAsync(Transport.Tcp, BadCredentials, SecureClient.Login("alice", "wrong"));
        await using var stranger = await server.ConnectWithAsync(Transport.Tcp, SecureClient.Login("stranger", "whatever"));
        await stranger.AssertAliveAsync();
        await using var alice = await server.ConnectWithAsync(Transport.WebSocket, SecureClient.Login("alice", "correct horse"));
        await alice.AssertAliveAsync();
    }

    [Fact]
    public async Task A_malformed_password_hash_stops_the_broker_at_start()
    {
        var failure = await BrokerApp.StartRefusedAsync("Broker:Security:Users:alice:PasswordHash=plaintext-password");
        Assert.Contains("Broker:Security:Users: every user needs a PasswordHash", failure.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Password_hashes_verify_only_their_own_password()
    {
        var hash = PasswordHasher.Hash("s3cret");
        Assert.StartsWith("pbkdf2-sha256$210000$", hash, StringComparison.Ordinal);
        Assert.True(PasswordHasher.IsWellFormed(hash));
        Assert.True(PasswordHasher.Verify("s3cret", hash));
        Assert.False(PasswordHasher.Verify("s3cret ", hash));
        Assert.NotEqual(hash, PasswordHasher.Hash("s3cret")); // a fresh salt each time
        Assert.False(PasswordHasher.Verify("s3cret", "pbkdf2-sha256$1$not-base64$AAAA"));
        Assert.False(PasswordHasher.Verify("s3cret", "md5$x$y$z"));
        Assert.False(PasswordHasher.IsWellFormed("pbkdf2-sha256$0$c2FsdA==$aGFzaA=="));
    }

    [Fact]
    public async Task The_hash_password_command_prints_a_hash_that_verifies_and_works_in_configuration()
    {
        const string password = "p@ss word with spaces";
        var (exitCode, stdout, stderr) = await RunBrokerCommandAsync(["hash-password"], password + "\n");
        Assert.True(exitCode == 0, $"hash-password exited with {exitCode}: {stderr}");
        var hash = stdout.Trim();
        Assert.DoesNotContain(password, stdout, StringComparison.Ordinal);
        Assert.True(PasswordHasher.IsWellFormed(hash), $"not a hash: '{hash}'");
        Assert.True(PasswordHasher.Verify(password, hash));
        Assert.False(PasswordHasher.Verify("p@ss word", hash));

        await using var server = await BrokerServer.StartAsync("Broker:Security:Anonymous=false", $"Broker:Security:Users:carol:PasswordHash={hash}");
        await using var carol = await server.ConnectWithAsync(Transport.Tcp, SecureClient.Login("carol", password));
        await carol.AssertAliveAsync();
        await server.ConnectRefusedAsync(Transport.Tcp, BadCredentials, SecureClient.Login("carol", "p@ss word"));
    }

    [Fact]
    public async Task The_hash_password_command_refuses_an_empty_password()
    {
        var (exitCode, stdout, stderr) = await RunBrokerCommandAsync(["hash-password"], "\n");
        Assert.Equal(2, exitCode);
        Assert.Equal("", stdout.Trim());
        Assert.Contains("usage", stderr, StringComparison.Ordinal);
    }

    // Runs the broker's own entry point (its build output sits next to the tests) with stdin redirected.
    private static async Task<(int ExitCode, string Stdout, string Stderr)> RunBrokerCommandAsync(string[] args, string stdin)
    {
        var info = new ProcessStartInfo("dotnet")
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = AppContext.BaseDirectory,
        };
        info.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "StompBroker.dll"));
        foreach (var arg in args)
        {
            info.ArgumentList.Add(arg);
        }

        using var process = Process.Start(info) ?? throw new InvalidOperationException("could not start the broker process");
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        await process.StandardInput.WriteAsync(stdin);
        process.StandardInput.Close();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        try
        {
            await process.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw;
        }

        return (process.ExitCode, await stdout, await stderr);
    }
}
