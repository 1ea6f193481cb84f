namespace Broker.Stomp;

/// <summary>What was wrong with the input; each kind has its own <see cref="StompProtocolException"/> message.</summary>
public enum StompErrorKind
{
    /// <summary>The command line is not one of the STOMP commands (they are case-sensitive).</summary>
    UnknownCommand,
    /// <summary>A header line has no colon.</summary>
    HeaderWithoutColon,
    /// <summary>A header line has an empty name.</summary>
    EmptyHeaderName,
    /// <summary>A backslash not followed by one of the escapes the version defines.</summary>
    UndefinedEscape,
    /// <summary>The command or a header is not valid UTF-8.</summary>
    InvalidUtf8,
    /// <summary>A CR not followed by LF where a line ends.</summary>
    InvalidLineEnding,
    /// <summary>The content-length header is not a non-negative decimal integer.</summary>
    InvalidContentLength,
    /// <summary>The octet after a content-length body is not NUL.</summary>
    MissingNul,
    /// <summary>A frame other than SEND, MESSAGE or ERROR carries a body.</summary>
    BodyNotAllowed,
    /// <summary>The frame is larger than the frame limit.</summary>
    FrameTooLarge,
    /// <summary>The body is larger than the body limit.</summary>
    BodyTooLarge,
    /// <summary>The frame has more headers than the header-count limit.</summary>
    TooManyHeaders,
    /// <summary>A command or header line is longer than the header-line limit.</summary>
    HeaderLineTooLong,
    /// <summary>No protocol version in common with the peer.</summary>
    UnsupportedVersion,
    /// <summary>A heart-beat header that is not two non-negative integers separated by a comma.</summary>
    InvalidHeartBeat,
}
