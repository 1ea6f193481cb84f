namespace Broker.Client;

/// <summary>The broker answered with an ERROR frame; <see cref="Exception.Message"/> is its <c>message</c> header.</summary>
public sealed class StompErrorException : Exception
{
    /// <summary>Creates the exception from an ERROR frame.</summary>
    public StompErrorException(string message, string? details, IReadOnlyList<KeyValuePair<string, string>> headers)
        : base(message)
    {
        Details = details;
        Headers = headers;
    }

    /// <summary>Creates the exception.</summary>
    public StompErrorException()
        : this("ERROR", null, [])
    {
    }

    /// <summary>Creates the exception.</summary>
    public StompErrorException(string message)
        : this(message, null, [])
    {
    }

    /// <summary>Creates the exception.</summary>
    public StompErrorException(string message, Exception innerException)
        : base(message, innerException) => Headers = [];

    /// <summary>The ERROR frame's body: the broker's explanation.</summary>
    public string? Details { get; }

    /// <summary>The ERROR frame's headers.</summary>
    public IReadOnlyList<KeyValuePair<string, string>> Headers { get; }
}

/// <summary>The connection to the broker failed or was lost before an operation completed.</summary>
public sealed class StompConnectionException : Exception
{
    /// <summary>Creates the exception.</summary>
    public StompConnectionException()
    {
    }

    /// <summary>Creates the exception.</summary>
    public StompConnectionException(string message)
        : base(message)
    {
    }

    /// <summary>Creates the exception.</summary>
    public StompConnectionException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}
