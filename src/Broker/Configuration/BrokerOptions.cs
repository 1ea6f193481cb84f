using System.ComponentModel.DataAnnotations;
using Broker.Stomp;

namespace Broker.Configuration;

/// <summary>Everything under the <c>Broker</c> configuration section.</summary>
public sealed class BrokerOptions
{
    /// <summary>The configuration section these options bind from.</summary>
    public const string SectionName = "Broker";

    /// <summary>Address both listeners bind to. Loopback by default: exposing the broker is a deliberate choice.</summary>
    public string BindAddress { get; set; } = "127.0.0.1";

    /// <summary>STOMP over plain TCP.</summary>
    public TcpListenerOptions Tcp { get; set; } = new();

    /// <summary>STOMP over WebSocket.</summary>
    public WebSocketListenerOptions WebSocket { get; set; } = new();

    /// <summary>Frame size limits.</summary>
    public FrameLimitOptions Limits { get; set; } = new();

    /// <summary>Per-connection outbound buffering and the slow-consumer policy.</summary>
    public OutboundOptions Outbound { get; set; } = new();

    /// <summary>Where messages go: <see cref="BackendKind.InMemory"/> (default) or <see cref="BackendKind.RabbitMq"/>.</summary>
    public BackendKind Backend { get; set; } = BackendKind.InMemory;

    /// <summary>The RabbitMQ backend's settings.</summary>
    public RabbitMqOptions RabbitMq { get; set; } = new();

    /// <summary>Authentication, authorization, origins and virtual hosts.</summary>
    public Security.SecurityOptions Security { get; set; } = new();

    /// <summary>
    /// How the listeners' sockets are served: <see cref="ConnectionTransport.Sockets"/> (the default) or
    /// <see cref="ConnectionTransport.IoUring"/>, which holds more connections than the process's open-files limit.
    /// </summary>
    public ConnectionTransport Transport { get; set; } = ConnectionTransport.Sockets;

    /// <summary>The io_uring transport's settings (with <see cref="Transport"/> = IoUring).</summary>
    public IoUringOptions IoUring { get; set; } = new();

    /// <summary>
    /// Run connection code on Kestrel's I/O threads instead of handing each read and write to the thread pool: fewer
    /// thread hops per message, so lower latency. Off by default: a slow step (a PBKDF2 password check at CONNECT) then
    /// holds up the other connections served by the same I/O thread.
    /// </summary>
    public bool InlineScheduling { get; set; }

    /// <summary>How long a graceful shutdown may take before connections are cut.</summary>
    public TimeSpan ShutdownGracePeriod { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>The status page, <c>GET /api/status</c> and the node snapshots published to <c>/topic/stompbroker.status</c>.</summary>
    public StatusOptions Status { get; set; } = new();
}

/// <summary>The transport under both listeners.</summary>
public enum ConnectionTransport
{
    /// <summary>Kestrel's own transport on .NET sockets: each connection is a file descriptor of the process.</summary>
    Sockets,

    /// <summary>
    /// io_uring (Linux 5.19 or later): each connection is a direct descriptor of a ring, not a file descriptor, so the
    /// open-files limit caps each ring instead of the process, and enough rings are run for
    /// <see cref="FrameLimitOptions.MaxConnections"/>. Sends go through the ring's thread: use it to hold many mostly
    /// idle connections, not for the highest message rate.
    /// </summary>
    IoUring,
}

/// <summary>The io_uring transport's rings.</summary>
public sealed class IoUringOptions
{
    /// <summary>Rings (each with its own thread) to run at least; 0 for one per core. More start when
    /// <see cref="FrameLimitOptions.MaxConnections"/> needs them.</summary>
    [Range(0, 256)]
    public int Rings { get; set; }

    /// <summary>
    /// Connections one ring holds; 0 to share <see cref="FrameLimitOptions.MaxConnections"/> (plus 5 %) out over the
    /// rings. Never more than the open-files limit, the most the kernel lets a ring register.
    /// </summary>
    [Range(0, int.MaxValue)]
    public int SlotsPerRing { get; set; }
}

/// <summary>
/// The web pages on the WebSocket listener (status page at <c>/</c>, chat and dashboard demos), <c>GET /api/status</c>,
/// and the node snapshot published as JSON to <c>/topic/stompbroker.status</c> every <see cref="Interval"/>.
/// </summary>
public sealed class StatusOptions
{
    /// <summary>Serve the pages and <c>/api/status</c>, and publish snapshots.</summary>
    public bool Enabled { get; set; } = true;

    /// <summary>How often a snapshot is taken and published.</summary>
    public TimeSpan Interval { get; set; } = TimeSpan.FromSeconds(1);
}

/// <summary>Settings every listener has.</summary>
public abstract class ListenerOptions
{
    /// <summary>TCP port; 0 turns the listener off.</summary>
    [Range(0, 65535)]
    public int Port { get; set; }

    /// <summary>Heart-beating on this listener.</summary>
    public HeartBeatOptions HeartBeat { get; set; } = new();

    /// <summary>TLS for this listener (off unless a certificate is given).</summary>
    public TlsOptions Tls { get; set; } = new();
}

/// <summary>
/// A listener's TLS certificate: a PEM certificate and key (<see cref="CertificatePath"/> + <see cref="KeyPath"/>), a
/// PKCS#12 file (<see cref="CertificatePath"/> ending in .pfx/.p12, with <see cref="Password"/>), or a certificate
/// store entry (<see cref="StoreName"/> + <see cref="Thumbprint"/>).
/// </summary>
public sealed class TlsOptions
{
    /// <summary>PEM certificate, or PKCS#12 (.pfx/.p12) file.</summary>
    public string? CertificatePath { get; set; }

    /// <summary>PEM private key (with a PEM certificate).</summary>
    public string? KeyPath { get; set; }

    /// <summary>Password of the PKCS#12 file or of an encrypted PEM key.</summary>
    public string? Password { get; set; }

    /// <summary>Certificate store name, such as "My".</summary>
    public string? StoreName { get; set; }

    /// <summary>Certificate store location: CurrentUser or LocalMachine.</summary>
    public System.Security.Cryptography.X509Certificates.StoreLocation StoreLocation { get; set; } = System.Security.Cryptography.X509Certificates.StoreLocation.CurrentUser;

    /// <summary>Thumbprint of the certificate in the store.</summary>
    public string? Thumbprint { get; set; }

    /// <summary>Whether TLS is on for the listener.</summary>
    public bool Enabled => CertificatePath is not null || Thumbprint is not null;
}

/// <summary>STOMP over TCP (default port 61613, as RabbitMQ's STOMP plugin).</summary>
public sealed class TcpListenerOptions : ListenerOptions
{
    /// <summary>Creates the defaults.</summary>
    public TcpListenerOptions() => Port = 61613;
}

/// <summary>STOMP over WebSocket (default port 15674, path /ws, as RabbitMQ Web-STOMP).</summary>
public sealed class WebSocketListenerOptions : ListenerOptions
{
    /// <summary>Creates the defaults.</summary>
    public WebSocketListenerOptions() => Port = 15674;

    /// <summary>The WebSocket endpoint's path.</summary>
    public string Path { get; set; } = "/ws";

    /// <summary>Negotiate permessage-deflate when the client offers it.</summary>
    public bool Compression { get; set; } = true;

    /// <summary>Frames smaller than this go uncompressed even on a compressed connection.</summary>
    [Range(0, int.MaxValue)]
    public int CompressionThresholdBytes { get; set; } = 1024;
}

/// <summary>
/// The server's heart-beat wish and the bounds it holds clients to. The negotiated intervals (STOMP 1.2
/// "Heart-beating") are clamped to [<see cref="MinMs"/>, <see cref="MaxMs"/>] when not 0.
/// </summary>
public sealed class HeartBeatOptions
{
    /// <summary>The server can send a heart-beat this often (sx), in milliseconds; 0: never.</summary>
    [Range(0, int.MaxValue)]
    public int SendMs { get; set; } = 10_000;

    /// <summary>The server wants a heart-beat from the client this often (sy), in milliseconds; 0: never.</summary>
    [Range(0, int.MaxValue)]
    public int ReceiveMs { get; set; } = 10_000;

    /// <summary>Floor for a negotiated interval, so no client can make the server beat or check too often.</summary>
    [Range(0, int.MaxValue)]
    public int MinMs { get; set; } = 1_000;

    /// <summary>Ceiling for a negotiated interval.</summary>
    [Range(1, int.MaxValue)]
    public int MaxMs { get; set; } = 3_600_000;

    /// <summary>A client silent for the incoming interval times this is closed.</summary>
    [Range(1.0, 100.0)]
    public double Tolerance { get; set; } = 2.0;

    internal HeartBeat ServerHeader => new(SendMs, ReceiveMs);

    internal int Clamp(int negotiatedMs) => negotiatedMs == 0 ? 0 : Math.Clamp(negotiatedMs, MinMs, Math.Max(MinMs, MaxMs));
}

/// <summary>Frame limits; an over-limit frame gets an ERROR and the connection is closed.</summary>
public sealed class FrameLimitOptions
{
    /// <summary>Largest frame once connected.</summary>
    [Range(1024, int.MaxValue)]
    public int MaxFrameBytes { get; set; } = 4 * 1024 * 1024;

    /// <summary>Largest frame before CONNECT succeeds: an unauthenticated peer gets a small budget.</summary>
    [Range(256, int.MaxValue)]
    public int MaxFrameBytesBeforeConnect { get; set; } = 64 * 1024;

    /// <summary>Most headers in one frame.</summary>
    [Range(1, int.MaxValue)]
    public int MaxHeaders { get; set; } = 1000;

    /// <summary>Longest header line.</summary>
    [Range(64, int.MaxValue)]
    public int MaxHeaderLineBytes { get; set; } = 8 * 1024;

    /// <summary>A connection that has not sent CONNECT within this time is closed.</summary>
    public TimeSpan ConnectTimeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>Most connections at once; 0 for no limit.</summary>
    [Range(0, int.MaxValue)]
    public int MaxConnections { get; set; } = 100_000;

    /// <summary>Most connections at once from one remote address; 0 for no limit.</summary>
    [Range(0, int.MaxValue)]
    public int MaxConnectionsPerAddress { get; set; } = 1_000;

    /// <summary>Most subscriptions per connection.</summary>
    [Range(1, int.MaxValue)]
    public int MaxSubscriptionsPerConnection { get; set; } = 1_000;

    /// <summary>Most open transactions per connection.</summary>
    [Range(1, int.MaxValue)]
    public int MaxTransactionsPerConnection { get; set; } = 100;

    /// <summary>Most frames inside one transaction.</summary>
    [Range(1, int.MaxValue)]
    public int MaxFramesPerTransaction { get; set; } = 10_000;

    /// <summary>Most unacknowledged messages per connection, over all its subscriptions.</summary>
    [Range(1, int.MaxValue)]
    public int MaxUnackedPerConnection { get; set; } = 10_000;

    /// <summary>Bytes all in-memory queues may hold, from a message's arrival to its acknowledgement; a SEND over it gets an ERROR.</summary>
    [Range(1024 * 1024, long.MaxValue)]
    public long MaxQueuedBytes { get; set; } = 1024L * 1024 * 1024;

    /// <summary>Per-connection rate limit (token bucket); off by default.</summary>
    public RateLimitOptions RateLimit { get; set; } = new();

    internal StompParserLimits Connected => new()
    {
        MaxFrameBytes = MaxFrameBytes,
        MaxBodyBytes = MaxFrameBytes,
        MaxHeaders = MaxHeaders,
        MaxHeaderLineBytes = MaxHeaderLineBytes,
    };

    internal StompParserLimits BeforeConnect => new()
    {
        MaxFrameBytes = Math.Min(MaxFrameBytesBeforeConnect, MaxFrameBytes),
        MaxBodyBytes = Math.Min(MaxFrameBytesBeforeConnect, MaxFrameBytes),
        MaxHeaders = MaxHeaders,
        MaxHeaderLineBytes = Math.Min(MaxHeaderLineBytes, MaxFrameBytesBeforeConnect),
    };
}

/// <summary>What a connection that sends faster than its rate limit gets.</summary>
public enum RateLimitAction
{
    /// <summary>ERROR "rate limit exceeded", then close.</summary>
    Disconnect,

    /// <summary>Its frames are read more slowly, at the allowed rate.</summary>
    Throttle,
}

/// <summary>A token bucket per connection: sustained rates, with bursts of up to one second's worth.</summary>
public sealed class RateLimitOptions
{
    /// <summary>Frames per second; 0 for no limit.</summary>
    [Range(0, int.MaxValue)]
    public int FramesPerSecond { get; set; }

    /// <summary>Bytes per second; 0 for no limit.</summary>
    [Range(0, long.MaxValue)]
    public long BytesPerSecond { get; set; }

    /// <summary>What a breach gets.</summary>
    public RateLimitAction OnBreach { get; set; } = RateLimitAction.Disconnect;
}

/// <summary>What happens to topic messages for a connection whose outbound buffer is full.</summary>
public enum SlowConsumerPolicy
{
    /// <summary>ERROR "slow consumer", then close the connection.</summary>
    Disconnect,

    /// <summary>Drop the oldest queued topic messages to make room.</summary>
    DropOldest,
}

/// <summary>Outbound buffering per connection.</summary>
public sealed class OutboundOptions
{
    /// <summary>Bytes a connection may have queued for sending before the slow-consumer policy applies.</summary>
    [Range(4096, int.MaxValue)]
    public int MaxBufferedBytes { get; set; } = 8 * 1024 * 1024;

    /// <summary>What happens to topic messages when the buffer is full. Queue messages wait for room instead.</summary>
    public SlowConsumerPolicy SlowConsumerPolicy { get; set; } = SlowConsumerPolicy.Disconnect;
}
