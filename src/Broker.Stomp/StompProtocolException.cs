using System.Diagnostics.CodeAnalysis;

namespace Broker.Stomp;

/// <summary>
/// Malformed or over-limit STOMP input. The only exception the parser throws for any input;
/// <see cref="Exception.Message"/> is short and precise enough for an ERROR frame's <c>message</c> header.
/// </summary>
public sealed class StompProtocolException : Exception
{
    /// <summary>Creates the exception.</summary>
    public StompProtocolException(StompErrorKind kind, string message)
        : base(message) => Kind = kind;

    /// <summary>Creates the exception for serializers and tools that need the standard constructors.</summary>
    public StompProtocolException()
        : this(StompErrorKind.UnknownCommand, "malformed frame")
    {
    }

    /// <summary>Creates the exception for serializers and tools that need the standard constructors.</summary>
    public StompProtocolException(string message)
        : this(StompErrorKind.UnknownCommand, message)
    {
    }

    /// <summary>Creates the exception for serializers and tools that need the standard constructors.</summary>
    public StompProtocolException(string message, Exception innerException)
        : base(message, innerException) => Kind = StompErrorKind.UnknownCommand;

    /// <summary>What was wrong.</summary>
    public StompErrorKind Kind { get; }

    /// <summary>Whether the input broke a configured limit rather than the grammar (the WebSocket close code differs).</summary>
    public bool IsLimit => Kind is StompErrorKind.FrameTooLarge or StompErrorKind.BodyTooLarge
        or StompErrorKind.TooManyHeaders or StompErrorKind.HeaderLineTooLong;

    [DoesNotReturn]
    internal static void Throw(StompErrorKind kind, string message) => throw new StompProtocolException(kind, message);
}
