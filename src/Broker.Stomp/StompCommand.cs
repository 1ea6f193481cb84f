namespace Broker.Stomp;

/// <summary>The command of a STOMP frame, client and server, plus <see cref="HeartBeat"/>.</summary>
public enum StompCommand : byte
{
    /// <summary>Not a command: one or more EOLs between frames, which the peer sends as a heart-beat.</summary>
    HeartBeat = 0,
    /// <summary>Client: open a session.</summary>
    Connect,
    /// <summary>Client: open a session (the 1.2 name for CONNECT).</summary>
    Stomp,
    /// <summary>Client: publish a message.</summary>
    Send,
    /// <summary>Client: start receiving from a destination.</summary>
    Subscribe,
    /// <summary>Client: stop a subscription.</summary>
    Unsubscribe,
    /// <summary>Client: acknowledge a message.</summary>
    Ack,
    /// <summary>Client: refuse a message.</summary>
    Nack,
    /// <summary>Client: start a transaction.</summary>
    Begin,
    /// <summary>Client: apply a transaction.</summary>
    Commit,
    /// <summary>Client: discard a transaction.</summary>
    Abort,
    /// <summary>Client: end the session.</summary>
    Disconnect,
    /// <summary>Server: the session is open.</summary>
    Connected,
    /// <summary>Server: a message for a subscription.</summary>
    Message,
    /// <summary>Server: a frame was processed.</summary>
    Receipt,
    /// <summary>Server: something went wrong; the connection closes.</summary>
    Error,
}

/// <summary>Facts about commands the parser, writer and session share.</summary>
public static class StompCommands
{
    private static readonly byte[][] Names =
    [
        [],
        "CONNECT"u8.ToArray(),
        "STOMP"u8.ToArray(),
        "SEND"u8.ToArray(),
        "SUBSCRIBE"u8.ToArray(),
        "UNSUBSCRIBE"u8.ToArray(),
        "ACK"u8.ToArray(),
        "NACK"u8.ToArray(),
        "BEGIN"u8.ToArray(),
        "COMMIT"u8.ToArray(),
        "ABORT"u8.ToArray(),
        "DISCONNECT"u8.ToArray(),
        "CONNECTED"u8.ToArray(),
        "MESSAGE"u8.ToArray(),
        "RECEIPT"u8.ToArray(),
        "ERROR"u8.ToArray(),
    ];

    /// <summary>The command's wire name in UTF-8 (empty for <see cref="StompCommand.HeartBeat"/>).</summary>
    public static ReadOnlySpan<byte> GetName(StompCommand command) => Names[(int)command];

    /// <summary>Only SEND, MESSAGE and ERROR may carry a body (STOMP 1.2, "Body").</summary>
    public static bool MayHaveBody(StompCommand command) =>
        command is StompCommand.Send or StompCommand.Message or StompCommand.Error;

    /// <summary>CONNECT, STOMP and CONNECTED headers are never escaped, for 1.0 compatibility.</summary>
    public static bool UsesEscaping(StompCommand command) =>
        command is not (StompCommand.Connect or StompCommand.Stomp or StompCommand.Connected);

    /// <summary>Whether a client may send this command (the others are server frames).</summary>
    public static bool IsClientCommand(StompCommand command) =>
        command is >= StompCommand.Connect and <= StompCommand.Disconnect;

    /// <summary>Matches a command line (without its EOL) exactly; commands are case-sensitive.</summary>
    public static bool TryParse(ReadOnlySpan<byte> name, out StompCommand command)
    {
        // Dispatch on length first: one comparison in the common case.
        command = name.Length switch
        {
            3 when name.SequenceEqual("ACK"u8) => StompCommand.Ack,
            4 when name.SequenceEqual("SEND"u8) => StompCommand.Send,
            4 when name.SequenceEqual("NACK"u8) => StompCommand.Nack,
            5 when name.SequenceEqual("STOMP"u8) => StompCommand.Stomp,
            5 when name.SequenceEqual("BEGIN"u8) => StompCommand.Begin,
            5 when name.SequenceEqual("ABORT"u8) => StompCommand.Abort,
            5 when name.SequenceEqual("ERROR"u8) => StompCommand.Error,
            6 when name.SequenceEqual("COMMIT"u8) => StompCommand.Commit,
            7 when name.SequenceEqual("CONNECT"u8) => StompCommand.Connect,
            7 when name.SequenceEqual("MESSAGE"u8) => StompCommand.Message,
            7 when name.SequenceEqual("RECEIPT"u8) => StompCommand.Receipt,
            9 when name.SequenceEqual("SUBSCRIBE"u8) => StompCommand.Subscribe,
            9 when name.SequenceEqual("CONNECTED"u8) => StompCommand.Connected,
            10 when name.SequenceEqual("DISCONNECT"u8) => StompCommand.Disconnect,
            11 when name.SequenceEqual("UNSUBSCRIBE"u8) => StompCommand.Unsubscribe,
            _ => StompCommand.HeartBeat,
        };
        return command != StompCommand.HeartBeat;
    }
}
