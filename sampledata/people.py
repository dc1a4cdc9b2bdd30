"""People: surname and given-name frequencies, display and mailbox names, NPIs."""

from __future__ import annotations

import unicodedata

# Approximate occurrences per 100,000 people for the most common US surnames (2010 census order).
_TOP_SURNAMES = """
Smith 828, Johnson 655, Williams 551, Brown 487, Jones 483, Garcia 394, Miller 386, Davis 378,
Rodriguez 368, Martinez 357, Hernandez 354, Lopez 292, Gonzalez 283, Wilson 273, Anderson 270,
Thomas 257, Taylor 255, Moore 240, Jackson 237, Martin 235, Lee 229, Perez 222, Thompson 218,
White 217, Harris 200, Sanchez 200, Clark 181, Ramirez 179, Lewis 174, Robinson 171, Walker 168,
Young 155, Allen 155, King 153, Wright 152, Scott 143, Torres 140, Nguyen 138, Hill 137,
Flores 137, Green 135, Adams 130, Nelson 126, Baker 125, Hall 124, Rivera 122, Campbell 119,
Mitchell 118, Carter 115, Roberts 114
"""

# The next names in rough frequency order; their weights follow a fitted power-law tail.
_MORE_SURNAMES = """
Gomez Phillips Evans Turner Diaz Parker Cruz Edwards Collins Reyes Stewart Morris Morales Murphy
Cook Rogers Gutierrez Ortiz Morgan Cooper Peterson Bailey Reed Kelly Howard Ramos Kim Cox Ward
Richardson Watson Brooks Chavez Wood James Bennett Gray Mendoza Ruiz Hughes Price Alvarez Castillo
Sanders Patel Myers Long Ross Foster Jimenez Powell Jenkins Perry Russell Sullivan Bell Coleman
Butler Henderson Barnes Gonzales Fisher Vasquez Simmons Romero Jordan Patterson Alexander Hamilton
Graham Reynolds Griffin Wallace Moreno West Cole Hayes Bryant Herrera Gibson Ellis Tran Medina
Aguilar Stevens Murray Ford Castro Marshall Owens Harrison Fernandez McDonald Woods Washington
Kennedy Wells Vargas Henry Chen Freeman Webb Tucker Guzman Burns Crawford Olson Simpson Porter
Hunter Gordon Mendez Silva Shaw Snyder Mason Dixon Munoz Hunt Hicks Holmes Palmer Wagner Black
Robertson Boyd Rose Stone Salazar Fox Warren Mills Meyer Rice Schmidt Garza Daniels Ferguson
Nichols Stephens Soto Weaver Ryan Gardner Payne Grant Dunn Kelley Spencer Hawkins Arnold Pierce
Vazquez Hansen Peters Santos Hart Bradley Knight Elliott Cunningham Duncan Armstrong Hudson Carroll
Lane Riley Andrews Alvarado Ray Delgado Berry Perkins Hoffman Johnston Matthews Pena Richards
Contreras Willis Carpenter Lawrence Sandoval Wang Li Singh Park Le Pham Shah Khan Zhang Liu Huang
Yang Ali Choi Okafor Cohen Goldberg Nowak Kowalski Rossi Haddad
"""


def _surname_table() -> list[tuple[str, float]]:
    table = []
    for chunk in _TOP_SURNAMES.replace("\n", " ").split(","):
        name, count = chunk.split()
        table.append((name, float(count)))
    last_rank, last_count = len(table), table[-1][1]
    for offset, name in enumerate(_MORE_SURNAMES.split(), start=1):
        # The census curve falls roughly as rank^-0.7 beyond the first fifty names.
        table.append((name, last_count * (last_rank / (last_rank + offset)) ** 0.7))
    return table


SURNAMES = _surname_table()

# Given names as (name, relative weight) for practitioners born roughly 1955-1995.
_MALE_NAMES = """
James 33, Robert 31, John 30, Michael 29, David 24, William 23, Richard 16, Joseph 13, Thomas 13,
Christopher 12, Daniel 12, Charles 11, Matthew 10, Anthony 9, Mark 9, Steven 8, Andrew 8, Paul 7,
Donald 7, Joshua 7, Kevin 7, Brian 7, Kenneth 6, Timothy 6, Ronald 6, Jason 6, George 5, Edward 5,
Jeffrey 5, Ryan 5, Jacob 5, Nicholas 5, Eric 5, Jonathan 5, Gary 4, Stephen 4, Justin 4, Scott 4,
Brandon 4, Benjamin 4, Samuel 3, Gregory 3, Alexander 3, Patrick 3, Frank 3, Raymond 3, Jose 3,
Jack 2, Dennis 2, Jerry 2, Tyler 2, Aaron 2, Adam 2, Nathan 2, Henry 2, Zachary 2, Douglas 2,
Peter 2, Kyle 2, Jeremy 2, Sean 2, Carlos 2, Luis 2, Juan 2, Miguel 1.5, Noah 1, Ethan 1,
Walter 1, Christian 1, Keith 1, Roger 1, Terry 1, Austin 1, Gerald 1, Carl 1, Harold 1, Dylan 1,
Arthur 1, Lawrence 1, Jordan 1, Jesse 1, Bryan 1, Bruce 1, Gabriel 1, Logan 1, Alan 1, Albert 1,
Vincent 1, Philip 1, Russell 1, Bradley 1, Wei 1, Raj 1, Arjun 1, Omar 1, Ahmed 1, Vikram 1,
Hiroshi 0.5, Kwame 0.5, Chinedu 0.5, Minh 1, Sanjay 1, Rahul 1, Hao 0.5, Tariq 0.5
"""

_FEMALE_NAMES = """
Mary 26, Jennifer 20, Patricia 17, Linda 17, Elizabeth 15, Barbara 14, Susan 13, Jessica 13,
Sarah 12, Karen 11, Lisa 11, Nancy 10, Margaret 9, Sandra 9, Ashley 9, Kimberly 9, Emily 8,
Donna 8, Michelle 8, Carol 7, Amanda 7, Melissa 7, Deborah 7, Stephanie 7, Rebecca 6, Laura 6,
Sharon 6, Cynthia 6, Kathleen 6, Amy 6, Angela 6, Shirley 5, Anna 5, Brenda 5, Pamela 5,
Nicole 5, Emma 4, Samantha 4, Katherine 4, Christine 4, Debra 4, Rachel 4, Catherine 4, Carolyn 4,
Janet 4, Ruth 3, Maria 4, Heather 4, Diane 3, Virginia 3, Julie 3, Joyce 3, Victoria 3, Olivia 3,
Kelly 3, Christina 3, Lauren 3, Joan 3, Evelyn 2, Judith 2, Megan 3, Andrea 3, Cheryl 2,
Hannah 2, Jacqueline 2, Martha 2, Gloria 2, Teresa 2, Ann 2, Sara 2, Madison 1, Frances 2,
Kathryn 2, Janice 2, Jean 2, Abigail 1, Alice 2, Julia 2, Judy 2, Sophia 1, Grace 1, Denise 2,
Amber 2, Doris 1, Marilyn 1, Danielle 2, Beverly 1, Isabella 1, Theresa 1, Diana 1, Natalie 2,
Brittany 2, Charlotte 1, Marie 1, Kayla 1, Alexis 1, Lori 1, Priya 1, Mei 1, Aisha 1, Fatima 1,
Ana 1.5, Lucia 1, Carmen 1, Yuki 0.5, Ngozi 0.5, Anjali 1, Linh 1, Sofia 1, Leah 1
"""


def _name_weights(text: str) -> list[tuple[str, float]]:
    pairs = []
    for chunk in text.replace("\n", " ").split(","):
        name, weight = chunk.split()
        pairs.append((name, float(weight)))
    return pairs


MALE_NAMES = _name_weights(_MALE_NAMES)
FEMALE_NAMES = _name_weights(_FEMALE_NAMES)


def npi_check_digit(base9: str) -> str:
    """Luhn check digit over the card-issuer prefix 80840 plus the nine NPI digits."""
    total = 0
    for i, char in enumerate(reversed("80840" + base9)):
        digit = int(char)
        if i % 2 == 0:
            digit = digit * 2 - 9 if digit > 4 else digit * 2
        total += digit
    return str((10 - total % 10) % 10)


def make_npi(base9: str) -> str:
    return base9 + npi_check_digit(base9)


def is_valid_npi(value: str) -> bool:
    return len(value) == 10 and value.isdigit() and npi_check_digit(value[:9]) == value[9]


def npi_for_index(index: int, seed: int, leading: str = "1") -> str:
    """A unique, random-looking NPI for each index: an affine permutation of 0..10^8-1."""
    # The multiplier is odd and not a multiple of 5, so it is invertible modulo 10^8.
    multiplier = 40_503_569
    offset = (seed * 2_654_435_761) % 100_000_000
    return make_npi(f"{leading}{(index * multiplier + offset) % 100_000_000:08d}")


# ---------------------------------------------------------------- resource builders


def display_name(given: list[str], family: str, degree: str) -> str:
    return f"{' '.join(given)} {family}, {degree}"


# Letters that NFKD does not split into a base letter plus an accent.
_NON_DECOMPOSING = str.maketrans({"ł": "l", "ø": "o", "ß": "ss", "æ": "ae", "đ": "d"})


def mailbox_name(given: str, family: str) -> str:
    """An ASCII local part for a Direct address, e.g. `jose.garcia-lopez`."""
    text = f"{given}.{family}".lower().replace(" ", "").translate(_NON_DECOMPOSING)
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return "".join(c for c in folded if c.isalnum() or c in ".-")
