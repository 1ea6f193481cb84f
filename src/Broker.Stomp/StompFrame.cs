using System.Buffers;

namespace Broker.Stomp;

/// <summary>
/// A STOMP frame: command, headers in order, body. A parsed frame is a view into the parser's header table
/// and the caller's input buffer: it is valid until the caller advances past the input or parses again.
/// Whoever keeps a frame's body copies it.
/// </summary>
public readonly struct StompFrame : IEquatable<StompFrame>
{
    /// <summary>Creates a frame.</summary>
    public StompFrame(StompCommand command, StompHeaders headers, ReadOnlySequence<byte> body)
    {
        Command = command;
        Headers = headers;
        Body = body;
    }

    /// <summary>Creates a frame without a body.</summary>
    public StompFrame(StompCommand command, StompHeaders headers)
        : this(command, headers, ReadOnlySequence<byte>.Empty)
    {
    }

    /// <summary>The heart-beat pseudo-frame: EOLs between frames.</summary>
    public static StompFrame HeartBeat => default;

    /// <summary>The command; <see cref="StompCommand.HeartBeat"/> for EOLs between frames.</summary>
    public StompCommand Command { get; }

    /// <summary>The headers, decoded.</summary>
    public StompHeaders Headers { get; }

    /// <summary>The body (empty when there is none).</summary>
    public ReadOnlySequence<byte> Body { get; }

    /// <summary>Whether this is the heart-beat pseudo-frame.</summary>
    public bool IsHeartBeat => Command == StompCommand.HeartBeat;

    /// <inheritdoc/>
    public bool Equals(StompFrame other) =>
        Command == other.Command && Headers == other.Headers && Body.Equals(other.Body);

    /// <inheritdoc/>
    public override bool Equals(object? obj) => obj is StompFrame other && Equals(other);

    /// <inheritdoc/>
    public override int GetHashCode() => HashCode.Combine(Command, Headers);

    /// <summary>Same command, header table and body view.</summary>
    public static bool operator ==(StompFrame left, StompFrame right) => left.Equals(right);

    /// <summary>Different command, header table or body view.</summary>
    public static bool operator !=(StompFrame left, StompFrame right) => !left.Equals(right);

    /// <inheritdoc/>
    public override string ToString() => $"{Command} ({Headers.Count} headers, {Body.Length} bytes)";
}
