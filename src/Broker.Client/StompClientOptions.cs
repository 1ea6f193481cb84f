using System.Net.Security;
using System.Text.Json;
using Microsoft.Extensions.Logging;

namespace Broker.Client;

/// <summary>How a <see cref="StompClient"/> connects. Immutable; start from <c>new StompClientOptions { Uri = … }</c>.</summary>
public sealed record StompClientOptions
{
    /// <summary>
    /// The broker: <c>ws://host:15674/ws</c>, <c>wss://…</c>, <c>tcp://host:61613</c> or <c>ssl://host:61614</c>
    /// (STOMP over TLS; <c>tls://</c> and <c>stomp+ssl://</c> are the same).
    /// </summary>
    public required Uri Uri { get; init; }

    /// <summary>The CONNECT <c>login</c> header.</summary>
    public string? Login { get; init; }

    /// <summary>The CONNECT <c>passcode</c> header.</summary>
    public string? Passcode { get; init; }

    /// <summary>A bearer token, sent as the CONNECT <c>passcode</c> (the convention of RabbitMQ and StompBroker).</summary>
    public string? Token { get; init; }

    /// <summary>
    /// Called before every connect and reconnect for fresh credentials (an expiring token, say); overrides
    /// <see cref="Login"/>, <see cref="Passcode"/> and <see cref="Token"/> when set.
    /// </summary>
    public Func<CancellationToken, ValueTask<StompCredentials>>? CredentialProvider { get; init; }

    /// <summary>The CONNECT <c>host</c> header: the virtual host. Default "/".</summary>
    public string VirtualHost { get; init; } = "/";

    /// <summary>How often the client offers to send heart-beats; zero for none.</summary>
    public TimeSpan HeartBeatOutgoing { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>How often the client wants heart-beats from the broker; zero for none.</summary>
    public TimeSpan HeartBeatIncoming { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>How long connecting (transport and CONNECT/CONNECTED) may take.</summary>
    public TimeSpan ConnectTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>How long to wait for a RECEIPT.</summary>
    public TimeSpan ReceiptTimeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>Reconnection after the connection is lost.</summary>
    public StompReconnectOptions Reconnect { get; init; } = StompReconnectOptions.Default;

    /// <summary>Messages a subscription buffers before it stops reading from the broker (back-pressure).</summary>
    public int SubscriptionBufferSize { get; init; } = 256;

    /// <summary>Serializer options for <see cref="StompClient.SendJsonAsync{T}"/> and <see cref="StompMessage.GetJson{T}"/>.</summary>
    public JsonSerializerOptions JsonOptions { get; init; } = JsonSerializerOptions.Web;

    /// <summary>Validates the broker's TLS certificate (wss:// and ssl://); null uses the system's validation.</summary>
    public RemoteCertificateValidationCallback? RemoteCertificateValidation { get; init; }

    /// <summary>Where the client logs; null for no logging.</summary>
    public ILoggerFactory? LoggerFactory { get; init; }
}

/// <summary>Credentials for one connect.</summary>
/// <param name="Login">The <c>login</c> header.</param>
/// <param name="Passcode">The <c>passcode</c> header (a token goes here).</param>
public sealed record StompCredentials(string? Login, string? Passcode);

/// <summary>Automatic reconnection: exponential backoff with jitter between tries.</summary>
public sealed record StompReconnectOptions
{
    /// <summary>On, from 100 ms up to 30 s between tries, forever.</summary>
    public static StompReconnectOptions Default { get; } = new();

    /// <summary>No reconnection: a lost connection closes the client.</summary>
    public static StompReconnectOptions Disabled { get; } = new() { Enabled = false };

    /// <summary>Whether to reconnect at all.</summary>
    public bool Enabled { get; init; } = true;

    /// <summary>Delay before the first retry; doubled after each failed try.</summary>
    public TimeSpan MinDelay { get; init; } = TimeSpan.FromMilliseconds(100);

    /// <summary>Longest delay between tries.</summary>
    public TimeSpan MaxDelay { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>Give up after this many failed tries in a row; 0 never gives up.</summary>
    public int MaxAttempts { get; init; }
}
