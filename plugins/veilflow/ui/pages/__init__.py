"""One ``APIRouter`` per page of the governance UI, each depending on the shared ``viewer``
and ``ui`` dependencies of ``veilflow.ui.context``."""
