namespace Broker.Stomp;

/// <summary>Header names the protocol defines, as UTF-8 literals for allocation-free lookups.</summary>
public static class StompHeaderNames
{
    /// <summary>accept-version</summary>
    public static ReadOnlySpan<byte> AcceptVersion => "accept-version"u8;
    /// <summary>ack</summary>
    public static ReadOnlySpan<byte> Ack => "ack"u8;
    /// <summary>content-length</summary>
    public static ReadOnlySpan<byte> ContentLength => "content-length"u8;
    /// <summary>content-type</summary>
    public static ReadOnlySpan<byte> ContentType => "content-type"u8;
    /// <summary>destination</summary>
    public static ReadOnlySpan<byte> Destination => "destination"u8;
    /// <summary>heart-beat</summary>
    public static ReadOnlySpan<byte> HeartBeat => "heart-beat"u8;
    /// <summary>host</summary>
    public static ReadOnlySpan<byte> Host => "host"u8;
    /// <summary>id</summary>
    public static ReadOnlySpan<byte> Id => "id"u8;
    /// <summary>login</summary>
    public static ReadOnlySpan<byte> Login => "login"u8;
    /// <summary>message</summary>
    public static ReadOnlySpan<byte> Message => "message"u8;
    /// <summary>message-id</summary>
    public static ReadOnlySpan<byte> MessageId => "message-id"u8;
    /// <summary>passcode</summary>
    public static ReadOnlySpan<byte> Passcode => "passcode"u8;
    /// <summary>receipt</summary>
    public static ReadOnlySpan<byte> Receipt => "receipt"u8;
    /// <summary>receipt-id</summary>
    public static ReadOnlySpan<byte> ReceiptId => "receipt-id"u8;
    /// <summary>server</summary>
    public static ReadOnlySpan<byte> Server => "server"u8;
    /// <summary>session</summary>
    public static ReadOnlySpan<byte> Session => "session"u8;
    /// <summary>subscription</summary>
    public static ReadOnlySpan<byte> Subscription => "subscription"u8;
    /// <summary>transaction</summary>
    public static ReadOnlySpan<byte> Transaction => "transaction"u8;
    /// <summary>version</summary>
    public static ReadOnlySpan<byte> Version => "version"u8;
}
