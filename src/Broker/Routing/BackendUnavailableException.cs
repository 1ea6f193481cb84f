namespace Broker.Routing;

/// <summary>The backend cannot take a message right now (RabbitMQ is away, or did not confirm it in time).</summary>
public sealed class BackendUnavailableException : Exception
{
    /// <summary>Creates the exception.</summary>
    public BackendUnavailableException(string message)
        : base(message)
    {
    }

    /// <summary>Creates the exception.</summary>
    public BackendUnavailableException()
    {
    }

    /// <summary>Creates the exception.</summary>
    public BackendUnavailableException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}
